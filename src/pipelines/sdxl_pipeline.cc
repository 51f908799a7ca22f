#include "pipelines/sdxl_pipeline.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "loaders/diffusers_folder.h"
#include "loaders/key_remap.h"
#include "models/layers/interruption.h"
#include "models/layers/memory_format.h"
#include "pipelines/active_set.h"
#include "pipelines/component_fit.h"
#include "pipelines/component_loader.h"
#include "pipelines/image_noise.h"
#include "pipelines/image_output.h"
#include "pipelines/latent_preview.h"
#include "pipelines/run_timer.h"

namespace tlcm {

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
  if (options.channels_last) {
    UseChannelsLast(*p->unet_);
    UseChannelsLast(*p->vae_);
  }
  TLCM_ASSIGN_OR_RETURN(
      LcmSchedulerConfig scheduler_config,
      LcmSchedulerConfig::FromFile(folder.ComponentDir("scheduler") + "/scheduler_config.json"));
  p->lcm_ = std::make_unique<LcmScheduler>(scheduler_config);
  p->table_ = std::make_unique<TlcmTableScheduler>(scheduler_config);

  p->vae_scale_factor_ = 1 << (p->vae_config_.block_out_channels.size() - 1);
  p->latent_channels_ = static_cast<int>(p->vae_config_.latent_channels);
  p->prompt_cache_ = std::make_unique<PromptCache>(options.prompt_cache_entries);
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

torch::Tensor StableDiffusionXLPipeline::Decode(const torch::Tensor& latents) {
  const torch::Tensor z = (latents.to(torch::kFloat32) / vae_config_.scaling_factor).to(vae_dtype_);
  return vae_->forward(z);
}

absl::StatusOr<RunResult> StableDiffusionXLPipeline::Run(const std::vector<ImageRequest>& requests,
                                                         const RunSettings& settings,
                                                         const RunHooks& hooks) {
  // 1. Check inputs.
  const std::string scheduler = settings.scheduler.empty() ? kDefaultScheduler : settings.scheduler;
  TLCM_ASSIGN_OR_RETURN(std::vector<int64_t> timesteps, Timesteps(scheduler, settings.steps));
  if (settings.width <= 0 || settings.height <= 0 || settings.width % vae_scale_factor_ != 0 ||
      settings.height % vae_scale_factor_ != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("width and height must be positive multiples of ", vae_scale_factor_, ", got ",
                     settings.width, "x", settings.height));
  }
  if (requests.empty()) return absl::InvalidArgumentError("a run needs at least one image");
  torch::NoGradGuard no_grad;
  RunResult result;
  result.images.resize(requests.size());
  RunTimer timer(options_.device);
  const torch::Device device = options_.device;
  ActiveSet active(requests.size());
  if (auto keep = active.Prune(hooks.should_drop, device); keep && active.empty()) return result;

  // 2. Encode the prompts of the images still wanted.
  std::vector<torch::Tensor> encoded = EncodePromptsCached(
      *prompt_cache_, requests, active.images(),
      [this](const std::vector<std::string>& p1, const std::vector<std::string>& p2) {
        PromptEmbeddings e = EncodePrompts(p1, p2);
        return std::vector<torch::Tensor>{e.prompt_embeds, e.pooled};
      },
      result.prompt_cache_hits, result.prompt_cache_misses);
  PromptEmbeddings embeds{encoded[0], encoded[1]};
  const auto n = static_cast<int64_t>(active.images().size());
  torch::Tensor time_ids =
      torch::tensor({settings.height, settings.width, 0, 0, settings.height, settings.width},
                    torch::kFloat32)
          .to(device, options_.dtype)
          .unsqueeze(0)
          .repeat({n, 1});
  result.text_encode_ms = timer.Lap();

  // 3. Initial latents: one generator per image, drawn on CPU in float32.
  const int64_t h = settings.height / vae_scale_factor_, w = settings.width / vae_scale_factor_;
  BatchNoise noise(requests);
  // float32 between steps
  torch::Tensor latents = noise.Draw(active.images(), {1, latent_channels_, h, w}, device);

  // 4. Denoise: every image advances one step per UNet call.
  const int total = static_cast<int>(timesteps.size());
  for (int step = 0; step < total && !active.empty(); ++step) {
    const int64_t rows = latents.size(0);
    const std::vector<int64_t> t(rows, timesteps[step]);
    const std::vector<int64_t> t_next(rows, step + 1 < total ? timesteps[step + 1] : -1);
    torch::Tensor eps;
    try {
      // Stops between UNet blocks once no image of the batch is wanted any more.
      const ScopedInterruption interruption([&] { return active.AllDropped(hooks.should_drop); });
      eps = unet_->forward(latents.to(options_.dtype), torch::tensor(t, torch::kInt64).to(device),
                           embeds.prompt_embeds, embeds.pooled, time_ids);
    } catch (const Interrupted&) {
      active.Prune(hooks.should_drop, device);  // every image leaves
      break;
    }
    torch::Tensor fresh;
    if (step + 1 < total) fresh = noise.Draw(active.images(), {1, latent_channels_, h, w}, device);
    latents = scheduler == "lcm" ? lcm_->Step(eps, t, latents, t_next, fresh)
                                 : table_->Step(eps, t, latents, t_next, fresh);
    if (hooks.on_step) hooks.on_step(step + 1, total);
    if (hooks.on_preview && hooks.wants_preview && step + 1 < total) {
      for (size_t r = 0; r < active.images().size(); ++r) {
        const size_t image = active.images()[r];
        if (hooks.wants_preview(image))
          hooks.on_preview(image, step + 1, LatentPreview(latents[r]));
      }
    }
    if (auto keep = active.Prune(hooks.should_drop, device)) {
      latents = latents.index_select(0, *keep);
      embeds.prompt_embeds = embeds.prompt_embeds.index_select(0, *keep);
      embeds.pooled = embeds.pooled.index_select(0, *keep);
      time_ids = time_ids.index_select(0, *keep);
    }
  }
  result.denoise_ms = timer.Lap();
  if (active.empty()) return result;

  // 5. Decode to 8-bit RGB.
  std::vector<RgbImage> images = ToRgbImages(Decode(latents));
  for (size_t r = 0; r < images.size(); ++r)
    result.images[active.images()[r]] = std::move(images[r]);
  result.decode_ms = timer.Lap();
  return result;
}

}  // namespace tlcm
