#include "pipelines/flux_pipeline.h"

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

// [B, C, h, w] -> [B, (h/2)(w/2), 4C]: 2x2 patches of the latent grid become tokens.
torch::Tensor Pack(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  return x.view({b, c, h / 2, 2, w / 2, 2})
      .permute({0, 2, 4, 1, 3, 5})
      .reshape({b, (h / 2) * (w / 2), c * 4});
}

// The inverse of Pack for an h x w latent grid.
torch::Tensor Unpack(const torch::Tensor& x, int64_t h, int64_t w) {
  const int64_t b = x.size(0), c = x.size(2) / 4;
  return x.view({b, h / 2, w / 2, c, 2, 2}).permute({0, 3, 1, 4, 2, 5}).reshape({b, c, h, w});
}

// img_ids[r * (w/2) + c] = (0, r, c), float32.
torch::Tensor ImageIds(int64_t h2, int64_t w2) {
  const torch::Tensor rows = torch::arange(h2, torch::kFloat32).view({h2, 1}).expand({h2, w2});
  const torch::Tensor cols = torch::arange(w2, torch::kFloat32).view({1, w2}).expand({h2, w2});
  return torch::stack({torch::zeros({h2, w2}), rows, cols}, -1).reshape({h2 * w2, 3});
}

}  // namespace

absl::StatusOr<std::unique_ptr<FluxPipeline>> FluxPipeline::Load(const std::string& model_path,
                                                                 const PipelineOptions& options) {
  TLCM_ASSIGN_OR_RETURN(DiffusersFolder folder, OpenDiffusersFolder(model_path));
  if (folder.family != PipelineFamily::kFlux) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": model_index.json names an SDXL pipeline, not FLUX"));
  }
  if (options.max_sequence_length < 1 || options.max_sequence_length > 512) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_sequence_length must be in [1, 512], got ", options.max_sequence_length));
  }
  const std::string vae_dir =
      options.vae_path.empty() ? folder.ComponentDir("vae") : options.vae_path;
  TLCM_RETURN_IF_ERROR(CheckFluxComponentsFit(model_path, vae_dir));
  std::unique_ptr<FluxPipeline> p(new FluxPipeline());
  p->options_ = options;
  // Each weight goes to its device and dtype as it is read; LoRA is fused there.
  const WeightPlacement placement{options.device, options.dtype};
  TLCM_ASSIGN_OR_RETURN(p->tokenizer_, ClipTokenizer::FromFolder(folder.ComponentDir("tokenizer")));
  TLCM_ASSIGN_OR_RETURN(p->tokenizer_2_,
                        T5Tokenizer::FromFolder(folder.ComponentDir("tokenizer_2")));
  TLCM_ASSIGN_OR_RETURN(p->text_encoder_, (LoadComponent<ClipTextModel, ClipTextConfig>(
                                              folder.ComponentDir("text_encoder"), options.variant,
                                              ClipTextKeys(), placement)));
  TLCM_ASSIGN_OR_RETURN(p->text_encoder_2_, (LoadComponent<T5EncoderModel, T5Config>(
                                                folder.ComponentDir("text_encoder_2"),
                                                options.variant, T5EncoderKeys(), placement)));
  TLCM_ASSIGN_OR_RETURN(
      FluxTransformerConfig transformer_config,
      FluxTransformerConfig::FromFile(folder.ComponentDir("transformer") + "/config.json"));
  p->guidance_embeds_ = transformer_config.guidance_embeds;
  TLCM_ASSIGN_OR_RETURN(
      p->transformer_,
      (LoadComponent<FluxTransformer2DModel, FluxTransformerConfig>(
          folder.ComponentDir("transformer"), options.variant, IdentityKeys(), placement)));
  TLCM_RETURN_IF_ERROR(FuseConfiguredLora(*p->transformer_, options));
  p->transformer_->FuseProjections();  // after the TLCM LoRA: the fused products include it
  TLCM_ASSIGN_OR_RETURN(p->vae_config_, AutoencoderKLConfig::FromFile(vae_dir + "/config.json"));
  // diffusers' FluxPipeline decodes in the VAE's own dtype, whatever its force_upcast says.
  p->vae_dtype_ = VaeDtype(options, /*upcast_float16=*/false);
  TLCM_ASSIGN_OR_RETURN(p->vae_, (LoadComponent<AutoencoderKLDecoder, AutoencoderKLConfig>(
                                     vae_dir, options.variant, VaeDecoderKeys(),
                                     WeightPlacement{options.device, p->vae_dtype_})));
  TLCM_ASSIGN_OR_RETURN(p->vae_encoder_, (LoadComponent<AutoencoderKLEncoder, AutoencoderKLConfig>(
                                             vae_dir, options.variant, VaeEncoderKeys(),
                                             WeightPlacement{options.device, p->vae_dtype_})));
  if (options.channels_last) {
    UseChannelsLast(*p->vae_);
    UseChannelsLast(*p->vae_encoder_);
  }
  TLCM_ASSIGN_OR_RETURN(FlowMatchSchedulerConfig scheduler_config,
                        FlowMatchSchedulerConfig::FromFile(folder.ComponentDir("scheduler") +
                                                           "/scheduler_config.json"));
  p->scheduler_ = std::make_unique<FlowMatchTlcmScheduler>(scheduler_config);
  p->vae_scale_factor_ = 1 << (p->vae_config_.block_out_channels.size() - 1);
  p->latent_channels_ = static_cast<int>(transformer_config.in_channels / 4);
  p->prompt_cache_ = std::make_unique<PromptCache>(options.prompt_cache_entries);
  p->adapters_ = MakeAdapterCache(options.adapter_folder, options.adapter_cache_bytes,
                                  p->transformer_.get(), options.device, options.dtype);
  if (options.cuda_graphs) {
    TLCM_ASSIGN_OR_RETURN(p->graphs_, DenoiserGraphs::Create(options.device));
  }
  return p;
}

FluxPipeline::PromptEmbeddings FluxPipeline::EncodePrompts(
    const std::vector<std::string>& prompts, const std::vector<std::string>& prompts_2) {
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(prompts.size());
  const auto ids = [&](const std::vector<int64_t>& flat) {
    return torch::tensor(flat, torch::kInt64).view({n, -1}).to(options_.device);
  };
  PromptEmbeddings out;
  std::vector<int64_t> clip_ids;
  for (const std::string& prompt : prompts) {
    const std::vector<int64_t> a = tokenizer_->Encode(prompt);
    clip_ids.insert(clip_ids.end(), a.begin(), a.end());
  }
  out.pooled = text_encoder_->forward(ids(clip_ids)).pooled.to(options_.dtype);
  RunTimer t5_timer(options_.device);
  std::vector<int64_t> t5_ids;
  for (const std::string& prompt : prompts_2) {
    const std::vector<int64_t> b = tokenizer_2_->Encode(prompt, options_.max_sequence_length);
    t5_ids.insert(t5_ids.end(), b.begin(), b.end());
  }
  out.prompt_embeds = text_encoder_2_->forward(ids(t5_ids)).to(options_.dtype);
  out.t5_ms = t5_timer.Lap();
  return out;
}

absl::Status FluxPipeline::CheckSettings(const RunSettings& settings) const {
  const std::string scheduler = settings.scheduler.empty() ? kDefaultScheduler : settings.scheduler;
  if (scheduler != kDefaultScheduler) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler '", scheduler, "' is not ", kDefaultScheduler));
  }
  if (settings.steps < 1) {
    return absl::InvalidArgumentError(absl::StrCat("steps must be >= 1, got ", settings.steps));
  }
  const int cell = 2 * vae_scale_factor_;
  if (settings.width <= 0 || settings.height <= 0 || settings.width % cell != 0 ||
      settings.height % cell != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("width and height must be positive multiples of ", cell, ", got ",
                     settings.width, "x", settings.height));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DenoisingSample>> FluxPipeline::StartSamples(
    const std::vector<ImageRequest>& requests, const RunSettings& settings,
    engine::StageTimings* stats) {
  TLCM_RETURN_IF_ERROR(CheckSettings(settings));
  const bool image_inputs = !requests.empty() && requests.front().image != nullptr;
  const int start = image_inputs ? FluxStartStep(settings.steps, settings.strength) : 0;
  TLCM_RETURN_IF_ERROR(CheckImageInputs(requests, settings.strength, settings.steps, start));
  torch::NoGradGuard no_grad;
  // T5 per token, CLIP pooled.
  std::vector<size_t> all(requests.size());
  std::iota(all.begin(), all.end(), 0);
  int hits = 0, misses = 0;
  const std::vector<torch::Tensor> encoded = EncodePromptsCached(
      *prompt_cache_, requests, all,
      [this, stats](const std::vector<std::string>& p1, const std::vector<std::string>& p2) {
        PromptEmbeddings e = EncodePrompts(p1, p2);
        stats->text_encode_t5_ms += e.t5_ms;
        return std::vector<torch::Tensor>{e.prompt_embeds, e.pooled};
      },
      hits, misses);
  stats->prompt_cache_hits += hits;
  stats->prompt_cache_misses += misses;
  // Initial latents per image (float32, CPU generator), packed into tokens.
  const int cell = 2 * vae_scale_factor_;
  const int64_t h = 2 * (settings.height / cell), w = 2 * (settings.width / cell);
  const std::vector<float> sigmas = scheduler_->Sigmas(settings.steps, (h / 2) * (w / 2));
  std::vector<DenoisingSample> samples;
  samples.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    DenoisingSample& sample = samples.emplace_back(requests[i]);
    sample.scheduler = kDefaultScheduler;
    sample.width = settings.width;
    sample.height = settings.height;
    sample.steps = settings.steps;
    sample.sigmas = sigmas;
    const auto row = static_cast<int64_t>(i);
    sample.embeds = {encoded[0].narrow(0, row, 1), encoded[1].narrow(0, row, 1)};
    if (!image_inputs) {
      sample.latents = Pack(sample.noise.Draw({1, latent_channels_, h, w}).to(options_.device));
    }
  }
  if (image_inputs) {
    // The encoded image noised to the first sigma run; every tensor packed into tokens.
    std::vector<ImageNoise*> noises;
    for (DenoisingSample& sample : samples) noises.push_back(&sample.noise);
    const ImageLatents inputs = EncodeImageInputs(
        vae_encoder_, requests, noises, settings.width, settings.height,
        {vae_config_.scaling_factor, vae_config_.shift_factor.value_or(0.0)}, options_.device);
    for (size_t i = 0; i < samples.size(); ++i) {
      DenoisingSample& sample = samples[i];
      const auto row = static_cast<int64_t>(i);
      sample.step = start;
      sample.image_latents = Pack(inputs.clean.narrow(0, row, 1));
      sample.image_noise = Pack(inputs.noise.narrow(0, row, 1));
      if (inputs.mask.defined()) {
        sample.mask = Pack(inputs.mask.narrow(0, row, 1).repeat({1, latent_channels_, 1, 1}));
      }
      sample.latents = FlowMatchTlcmScheduler::ScaleNoise(sample.image_latents, sample.image_noise,
                                                          sigmas[start]);
    }
  }
  return samples;
}

bool FluxPipeline::Step(const std::vector<DenoisingSample*>& set,
                        const std::function<bool()>& interrupt) {
  torch::NoGradGuard no_grad;
  const torch::Device device = options_.device;
  const DenoisingSample& first = *set.front();
  std::vector<float> sigma, sigma_next, timestep, guidance;
  std::vector<torch::Tensor> latents, prompt_embeds, pooled;
  for (const DenoisingSample* s : set) {
    TORCH_CHECK(!s->done() && s->width == first.width && s->height == first.height,
                "FluxPipeline::Step: samples must be unfinished and of one size");
    sigma.push_back(s->sigmas[s->step]);
    sigma_next.push_back(s->sigmas[s->step + 1]);
    timestep.push_back(scheduler_->TransformerTimestep(s->sigmas[s->step]));
    guidance.push_back(s->request.guidance_scale);
    latents.push_back(s->latents);
    prompt_embeds.push_back(s->embeds[0]);
    pooled.push_back(s->embeds[1]);
  }
  const int cell = 2 * vae_scale_factor_;
  const int64_t h2 = first.height / cell, w2 = first.width / cell;
  const torch::Tensor img_ids = ImageIds(h2, w2).to(device, options_.dtype);
  const torch::Tensor txt = torch::cat(prompt_embeds);
  const torch::Tensor txt_ids =
      torch::zeros({txt.size(1), 3}, torch::kFloat32).to(device, options_.dtype);
  const torch::Tensor x = torch::cat(latents);
  torch::Tensor guidance_tensor;
  if (guidance_embeds_) guidance_tensor = torch::tensor(guidance, torch::kFloat32).to(device);
  torch::Tensor velocity;
  try {
    // Each row's style adapters, added per sample by the LoRA-capable layers.
    const LoraBatch lora = lora_batches_.Build(SampleAdapters(set), device, options_.dtype);
    const ScopedLoraBatch lora_scope(&lora);
    const ScopedInterruption interruption(interrupt);
    const std::vector<torch::Tensor> inputs = {x.to(options_.dtype),
                                               txt,
                                               torch::cat(pooled),
                                               torch::tensor(timestep, torch::kFloat32).to(device),
                                               guidance_tensor,
                                               img_ids,
                                               txt_ids};
    const auto transformer = [this](const std::vector<torch::Tensor>& in) {
      return transformer_->forward(in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
    };
    // Style adapters are per-call state, which a graph cannot replay (denoiser_graphs.h).
    velocity =
        graphs_ && lora.updates.empty() ? graphs_->Run(inputs, transformer) : transformer(inputs);
  } catch (const Interrupted&) {
    return false;
  }
  // The TLCM step re-noises with a fresh draw at every step; the last one is multiplied by 0.
  std::vector<torch::Tensor> fresh;
  for (DenoisingSample* s : set) fresh.push_back(s->noise.Draw(s->latents.sizes()));
  AdvanceSamples(set,
                 scheduler_->Step(velocity, sigma, x, sigma_next, torch::cat(fresh).to(device)));
  // Inpainting: outside the mask, the input noised to the next step's sigma.
  BlendMaskedSamples(set, [&](const DenoisingSample& s) {
    return FlowMatchTlcmScheduler::ScaleNoise(s.image_latents, s.image_noise, s.sigmas[s.step]);
  });
  return true;
}

RgbImage FluxPipeline::Preview(const DenoisingSample& sample) const {
  const int cell = 2 * vae_scale_factor_;
  return LatentPreview(
      Unpack(sample.latents, 2 * (sample.height / cell), 2 * (sample.width / cell))[0]);
}

std::vector<RgbImage> FluxPipeline::Decode(const std::vector<const DenoisingSample*>& samples) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> latents;
  for (const DenoisingSample* s : samples) latents.push_back(s->latents);
  const int cell = 2 * vae_scale_factor_;
  const DenoisingSample& first = *samples.front();
  // Unpack, undo the VAE's scaling and shift, decode.
  const torch::Tensor z =
      Unpack(torch::cat(latents), 2 * (first.height / cell), 2 * (first.width / cell)) /
          vae_config_.scaling_factor +
      vae_config_.shift_factor.value_or(0.0);
  return ToRgbImages(vae_->forward(z.to(vae_dtype_)));
}

absl::StatusOr<RunResult> FluxPipeline::Run(const std::vector<ImageRequest>& requests,
                                            const RunSettings& settings, const RunHooks& hooks) {
  return RunDenoisingLoop(*this, requests, settings, hooks);
}

}  // namespace tlcm
