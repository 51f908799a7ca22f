#include "pipelines/sdxl_pipeline.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "loaders/diffusers_folder.h"
#include "loaders/key_remap.h"
#include "models/layers/interruption.h"
#include "models/layers/lora_batch.h"
#include "models/layers/memory_format.h"
#include "pipelines/component_fit.h"
#include "pipelines/component_loader.h"
#include "pipelines/denoising_loop.h"
#include "pipelines/image_inputs.h"
#include "pipelines/image_output.h"
#include "pipelines/latent_preview.h"

namespace tlcm {
namespace {

// The scheduler step of a set whose samples may use different schedulers: `step(name, rows)`
// once per scheduler with the rows (indices into `set`, ascending) of its samples; the results
// ([rows, ...] float32) are assembled in `set`'s order. One call over every row when the set
// has one scheduler.
torch::Tensor ForEachScheduler(
    const std::vector<DenoisingSample*>& set,
    const std::function<torch::Tensor(const std::string& name, const std::vector<int64_t>& rows)>&
        step) {
  std::vector<std::string> names;
  for (const DenoisingSample* s : set) {
    if (std::find(names.begin(), names.end(), s->scheduler) == names.end())
      names.push_back(s->scheduler);
  }
  torch::Tensor out;
  for (const std::string& name : names) {
    std::vector<int64_t> rows;
    for (size_t r = 0; r < set.size(); ++r) {
      if (set[r]->scheduler == name) rows.push_back(static_cast<int64_t>(r));
    }
    torch::Tensor part = step(name, rows);
    if (names.size() == 1) return part;
    if (!out.defined()) {
      std::vector<int64_t> shape = part.sizes().vec();
      shape[0] = static_cast<int64_t>(set.size());
      out = torch::empty(shape, part.options());
    }
    out.index_copy_(0, torch::tensor(rows, torch::kInt64).to(part.device()), part);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StableDiffusionXLPipeline>> StableDiffusionXLPipeline::Load(
    const std::string& model_path, const PipelineOptions& options) {
  TLCM_ASSIGN_OR_RETURN(DiffusersFolder folder, OpenDiffusersFolder(model_path));
  if (folder.family != PipelineFamily::kSdxl) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": model_index.json names a FLUX pipeline, not SDXL"));
  }
  const std::string vae_dir =
      options.vae_path.empty() ? folder.ComponentDir("vae") : options.vae_path;
  TLCM_RETURN_IF_ERROR(CheckSdxlComponentsFit(model_path, vae_dir));
  std::unique_ptr<StableDiffusionXLPipeline> p(new StableDiffusionXLPipeline());
  p->options_ = options;
  // Each weight goes to its device and dtype as it is read; LoRA is fused there.
  const WeightPlacement placement{options.device, options.dtype};
  TLCM_ASSIGN_OR_RETURN(p->tokenizer_, ClipTokenizer::FromFolder(folder.ComponentDir("tokenizer")));
  TLCM_ASSIGN_OR_RETURN(p->tokenizer_2_,
                        ClipTokenizer::FromFolder(folder.ComponentDir("tokenizer_2")));
  TLCM_ASSIGN_OR_RETURN(p->text_encoder_, (LoadComponent<ClipTextModel, ClipTextConfig>(
                                              folder.ComponentDir("text_encoder"), options.variant,
                                              ClipTextKeys(), placement)));
  TLCM_ASSIGN_OR_RETURN(p->text_encoder_2_, (LoadComponent<ClipTextModel, ClipTextConfig>(
                                                folder.ComponentDir("text_encoder_2"),
                                                options.variant, ClipTextKeys(), placement)));
  TLCM_ASSIGN_OR_RETURN(
      p->unet_, (LoadComponent<UNet2DConditionModel, UNet2DConditionConfig>(
                    folder.ComponentDir("unet"), options.variant, IdentityKeys(), placement)));
  TLCM_RETURN_IF_ERROR(FuseConfiguredLora(*p->unet_, options));
  TLCM_ASSIGN_OR_RETURN(p->vae_config_, AutoencoderKLConfig::FromFile(vae_dir + "/config.json"));
  // SDXL's VAE overflows in fp16 unless its config says force_upcast: false (VaeDtype's rule).
  p->vae_dtype_ = VaeDtype(options, p->vae_config_.force_upcast);
  TLCM_ASSIGN_OR_RETURN(p->vae_, (LoadComponent<AutoencoderKLDecoder, AutoencoderKLConfig>(
                                     vae_dir, options.variant, VaeDecoderKeys(),
                                     WeightPlacement{options.device, p->vae_dtype_})));
  TLCM_ASSIGN_OR_RETURN(p->vae_encoder_, (LoadComponent<AutoencoderKLEncoder, AutoencoderKLConfig>(
                                             vae_dir, options.variant, VaeEncoderKeys(),
                                             WeightPlacement{options.device, p->vae_dtype_})));
  if (options.channels_last) {
    UseChannelsLast(*p->unet_);
    UseChannelsLast(*p->vae_);
    UseChannelsLast(*p->vae_encoder_);
  }
  TLCM_ASSIGN_OR_RETURN(
      LcmSchedulerConfig scheduler_config,
      LcmSchedulerConfig::FromFile(folder.ComponentDir("scheduler") + "/scheduler_config.json"));
  p->lcm_ = std::make_unique<LcmScheduler>(scheduler_config);
  p->table_ = std::make_unique<TlcmTableScheduler>(scheduler_config);

  p->vae_scale_factor_ = 1 << (p->vae_config_.block_out_channels.size() - 1);
  p->latent_channels_ = static_cast<int>(p->vae_config_.latent_channels);
  p->inpainting_unet_ = p->unet_->config().in_channels == 2 * p->latent_channels_ + 1;
  p->prompt_cache_ = std::make_unique<PromptCache>(options.prompt_cache_entries);
  p->adapters_ = MakeAdapterCache(options.adapter_folder, options.adapter_cache_bytes,
                                  p->unet_.get(), options.device, options.dtype);
  if (options.cuda_graphs) {
    TLCM_ASSIGN_OR_RETURN(p->graphs_, DenoiserGraphs::Create(options.device));
  }
  return p;
}

absl::StatusOr<std::vector<int64_t>> StableDiffusionXLPipeline::Timesteps(
    const std::string& scheduler, int steps) const {
  if (scheduler == "lcm") {
    const int max = lcm_->config().original_inference_steps;
    if (steps < 1 || steps > max) {
      return absl::InvalidArgumentError(
          absl::StrCat("steps must be in [1, ", max, "] for the lcm scheduler, got ", steps));
    }
    return lcm_->Timesteps(steps);
  }
  if (scheduler == "tlcm") {
    if (steps < TlcmTableScheduler::kMinSteps || steps > TlcmTableScheduler::kMaxSteps) {
      return absl::InvalidArgumentError(
          absl::StrCat("steps must be in [1, 8] for the tlcm scheduler, got ", steps));
    }
    return table_->Timesteps(steps);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("scheduler '", scheduler, "' is not one of lcm, tlcm"));
}

StableDiffusionXLPipeline::PromptEmbeddings StableDiffusionXLPipeline::EncodePrompts(
    const std::vector<std::string>& prompts, const std::vector<std::string>& prompts_2) {
  torch::NoGradGuard no_grad;
  const auto ids = [&](const ClipTokenizer& tokenizer, const std::vector<std::string>& texts) {
    std::vector<int64_t> flat;
    for (const std::string& text : texts) {
      const std::vector<int64_t> one = tokenizer.Encode(text);
      flat.insert(flat.end(), one.begin(), one.end());
    }
    const int64_t n = static_cast<int64_t>(texts.size());
    return torch::tensor(flat, torch::kInt64).view({n, -1}).to(options_.device);
  };
  const ClipTextOutput first = text_encoder_->forward(ids(*tokenizer_, prompts));
  const ClipTextOutput second = text_encoder_2_->forward(ids(*tokenizer_2_, prompts_2));
  PromptEmbeddings out;
  out.prompt_embeds =
      torch::cat({first.penultimate_hidden_state, second.penultimate_hidden_state}, -1)
          .to(options_.dtype);
  out.pooled = second.text_embeds.to(options_.dtype);
  return out;
}

torch::Tensor StableDiffusionXLPipeline::DecodeLatents(const torch::Tensor& latents) {
  const torch::Tensor z = (latents.to(torch::kFloat32) / vae_config_.scaling_factor).to(vae_dtype_);
  return vae_->forward(z);
}

absl::Status StableDiffusionXLPipeline::CheckSettings(const RunSettings& settings) const {
  const std::string scheduler = settings.scheduler.empty() ? kDefaultScheduler : settings.scheduler;
  TLCM_RETURN_IF_ERROR(Timesteps(scheduler, settings.steps).status());
  if (settings.width <= 0 || settings.height <= 0 || settings.width % vae_scale_factor_ != 0 ||
      settings.height % vae_scale_factor_ != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("width and height must be positive multiples of ", vae_scale_factor_, ", got ",
                     settings.width, "x", settings.height));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DenoisingSample>> StableDiffusionXLPipeline::StartSamples(
    const std::vector<ImageRequest>& requests, const RunSettings& settings,
    engine::StageTimings* stats) {
  TLCM_RETURN_IF_ERROR(CheckSettings(settings));
  const std::string scheduler = settings.scheduler.empty() ? kDefaultScheduler : settings.scheduler;
  TLCM_ASSIGN_OR_RETURN(std::vector<int64_t> timesteps, Timesteps(scheduler, settings.steps));
  const bool image_inputs = !requests.empty() && requests.front().image != nullptr;
  const int start = image_inputs ? SdxlStartStep(settings.steps, settings.strength) : 0;
  TLCM_RETURN_IF_ERROR(CheckImageInputs(requests, settings.strength, settings.steps, start));
  if (inpainting_unet_ && (!image_inputs || !requests.front().mask)) {
    return absl::InvalidArgumentError(
        "mask: the model's UNet is an inpainting UNet (9 input channels): every request needs an "
        "image and a mask");
  }
  torch::NoGradGuard no_grad;
  std::vector<size_t> all(requests.size());
  std::iota(all.begin(), all.end(), 0);
  int hits = 0, misses = 0;
  const std::vector<torch::Tensor> encoded = EncodePromptsCached(
      *prompt_cache_, requests, all,
      [this](const std::vector<std::string>& p1, const std::vector<std::string>& p2) {
        PromptEmbeddings e = EncodePrompts(p1, p2);
        return std::vector<torch::Tensor>{e.prompt_embeds, e.pooled};
      },
      hits, misses);
  stats->prompt_cache_hits += hits;
  stats->prompt_cache_misses += misses;
  // One generator per image, drawn on CPU in float32; float32 latents between steps.
  const int64_t h = settings.height / vae_scale_factor_, w = settings.width / vae_scale_factor_;
  std::vector<DenoisingSample> samples;
  samples.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    DenoisingSample& sample = samples.emplace_back(requests[i]);
    sample.scheduler = scheduler;
    sample.width = settings.width;
    sample.height = settings.height;
    sample.steps = settings.steps;
    sample.timesteps = timesteps;
    const auto row = static_cast<int64_t>(i);
    sample.embeds = {encoded[0].narrow(0, row, 1), encoded[1].narrow(0, row, 1)};
    if (!image_inputs)
      sample.latents = sample.noise.Draw({1, latent_channels_, h, w}).to(options_.device);
  }
  if (image_inputs) {
    // The encoded image noised to the first timestep run (inpainting at strength 1: the noise
    // alone, as diffusers does; an inpainting UNet then needs no latent of the input itself).
    std::vector<ImageNoise*> noises;
    for (DenoisingSample& sample : samples) noises.push_back(&sample.noise);
    const bool from_noise = requests.front().mask != nullptr && settings.strength == 1.0;
    const ImageLatents inputs =
        EncodeImageInputs(vae_encoder_, requests, noises, settings.width, settings.height,
                          {vae_config_.scaling_factor, 0.0}, options_.device,
                          ImageInputPlan{.encode_images = !(inpainting_unet_ && from_noise),
                                         .encode_masked = inpainting_unet_});
    for (size_t i = 0; i < samples.size(); ++i) {
      DenoisingSample& sample = samples[i];
      const auto row = static_cast<int64_t>(i);
      sample.step = start;
      if (inputs.clean.defined()) sample.image_latents = inputs.clean.narrow(0, row, 1);
      sample.image_noise = inputs.noise.narrow(0, row, 1);
      if (inputs.mask.defined()) sample.mask = inputs.mask.narrow(0, row, 1);
      if (inputs.masked.defined()) sample.masked_image_latents = inputs.masked.narrow(0, row, 1);
      sample.latents = from_noise ? sample.image_noise
                                  : AddNoise(lcm_->alphas_cumprod(), sample.image_latents,
                                             sample.image_noise, timesteps[start]);
    }
  }
  return samples;
}

bool StableDiffusionXLPipeline::Step(const std::vector<DenoisingSample*>& set,
                                     const std::function<bool()>& interrupt) {
  torch::NoGradGuard no_grad;
  const torch::Device device = options_.device;
  const DenoisingSample& first = *set.front();
  const auto rows = static_cast<int64_t>(set.size());
  std::vector<int64_t> t, t_next;
  std::vector<torch::Tensor> latents, prompt_embeds, pooled;
  for (const DenoisingSample* s : set) {
    TORCH_CHECK(!s->done() && s->width == first.width && s->height == first.height,
                "StableDiffusionXLPipeline::Step: samples must be unfinished and of one size");
    t.push_back(s->timesteps[s->step]);
    t_next.push_back(s->step + 1 < s->steps ? s->timesteps[s->step + 1] : -1);
    latents.push_back(s->latents);
    prompt_embeds.push_back(s->embeds[0]);
    pooled.push_back(s->embeds[1]);
  }
  const torch::Tensor x = torch::cat(latents);
  // An inpainting UNet reads concat(latents, mask, masked-image latents) along the channels.
  torch::Tensor unet_input = x;
  if (inpainting_unet_) {
    std::vector<torch::Tensor> masks, masked;
    for (const DenoisingSample* s : set) {
      masks.push_back(s->mask);
      masked.push_back(s->masked_image_latents);
    }
    unet_input = torch::cat({x, torch::cat(masks), torch::cat(masked)}, 1);
  }
  const torch::Tensor time_ids =
      torch::tensor({first.height, first.width, 0, 0, first.height, first.width}, torch::kFloat32)
          .to(device, options_.dtype)
          .unsqueeze(0)
          .repeat({rows, 1});
  torch::Tensor eps;
  try {
    // Each row's style adapters, added per sample by the LoRA-capable layers.
    const LoraBatch lora = lora_batches_.Build(SampleAdapters(set), device, options_.dtype);
    const ScopedLoraBatch lora_scope(&lora);
    const ScopedInterruption interruption(interrupt);
    const std::vector<torch::Tensor> inputs = {
        unet_input.to(options_.dtype), torch::tensor(t, torch::kInt64).to(device),
        torch::cat(prompt_embeds), torch::cat(pooled), time_ids};
    const auto unet = [this](const std::vector<torch::Tensor>& in) {
      return unet_->forward(in[0], in[1], in[2], in[3], in[4]);
    };
    // Style adapters are per-call state, which a graph cannot replay (denoiser_graphs.h).
    eps = graphs_ && lora.updates.empty() ? graphs_->Run(inputs, unet) : unet(inputs);
  } catch (const Interrupted&) {
    return false;
  }
  // Samples that go on take their stream's next draw; those at their last step take none.
  std::vector<torch::Tensor> fresh;
  bool any_fresh = false;
  for (DenoisingSample* s : set) {
    const auto shape = s->latents.sizes();
    if (s->step + 1 < s->steps) {
      fresh.push_back(s->noise.Draw(shape));
      any_fresh = true;
    } else {
      fresh.push_back(torch::zeros(shape, torch::kFloat32));
    }
  }
  const torch::Tensor noise = any_fresh ? torch::cat(fresh).to(device) : torch::Tensor();
  const auto scheduler_step = [&](const std::string& name, const torch::Tensor& rows_eps,
                                  const std::vector<int64_t>& rows_t, const torch::Tensor& rows_x,
                                  const std::vector<int64_t>& rows_t_next,
                                  const torch::Tensor& rows_noise) {
    return name == "lcm" ? lcm_->Step(rows_eps, rows_t, rows_x, rows_t_next, rows_noise)
                         : table_->Step(rows_eps, rows_t, rows_x, rows_t_next, rows_noise);
  };
  const torch::Tensor next =
      ForEachScheduler(set, [&](const std::string& name, const std::vector<int64_t>& picked) {
        if (picked.size() == set.size()) return scheduler_step(name, eps, t, x, t_next, noise);
        const torch::Tensor index = torch::tensor(picked, torch::kInt64).to(device);
        std::vector<int64_t> sub_t, sub_t_next;
        for (int64_t r : picked) {
          sub_t.push_back(t[r]);
          sub_t_next.push_back(t_next[r]);
        }
        return scheduler_step(name, eps.index_select(0, index), sub_t, x.index_select(0, index),
                              sub_t_next,
                              noise.defined() ? noise.index_select(0, index) : torch::Tensor());
      });
  AdvanceSamples(set, next);
  // Inpainting with a 4-channel UNet: outside the mask, the input noised to the next step's
  // timestep (the table sampler shares LCM's alphas_cumprod). An inpainting UNet keeps the
  // input by itself.
  if (!inpainting_unet_) {
    BlendMaskedSamples(set, [&](const DenoisingSample& s) {
      return AddNoise(lcm_->alphas_cumprod(), s.image_latents, s.image_noise, s.timesteps[s.step]);
    });
  }
  return true;
}

RgbImage StableDiffusionXLPipeline::Preview(const DenoisingSample& sample) const {
  return LatentPreview(sample.latents[0]);
}

std::vector<RgbImage> StableDiffusionXLPipeline::Decode(
    const std::vector<const DenoisingSample*>& samples) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> latents;
  for (const DenoisingSample* s : samples) latents.push_back(s->latents);
  return ToRgbImages(DecodeLatents(torch::cat(latents)));
}

absl::StatusOr<RunResult> StableDiffusionXLPipeline::Run(const std::vector<ImageRequest>& requests,
                                                         const RunSettings& settings,
                                                         const RunHooks& hooks) {
  return RunDenoisingLoop(*this, requests, settings, hooks);
}

}  // namespace tlcm
