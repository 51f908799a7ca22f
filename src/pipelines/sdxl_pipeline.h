// StableDiffusionXLPipeline with TLCM: two CLIP text encoders, a UNet with the TLCM LoRA fused,
// the LCM scheduler (or the authors' table sampler) and the VAE decoder. No classifier-free
// guidance (TLCM runs at guidance 0).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/unet_2d_condition.h"
#include "pipelines/adapter_cache.h"
#include "pipelines/denoiser_graphs.h"
#include "pipelines/denoising_sample.h"
#include "pipelines/pipeline_options.h"
#include "pipelines/prompt_cache.h"
#include "schedulers/lcm_scheduler.h"
#include "schedulers/tlcm_table_scheduler.h"
#include "text/clip_tokenizer.h"

namespace tlcm {

class StableDiffusionXLPipeline {
 public:
  // Scheduler names: "lcm" (default; LCMScheduler) and "tlcm" (the authors' inference.py table).
  static constexpr const char* kDefaultScheduler = "lcm";

  // Loads every component of the diffusers folder `model_path` (model_index.json naming a
  // StableDiffusionXLPipeline), fuses the LoRA into the UNet and moves the models to
  // options.device / options.dtype (the VAE stays in float32 under fp16 when its config asks
  // for force_upcast). Errors name the folder, file and key at fault.
  static absl::StatusOr<std::unique_ptr<StableDiffusionXLPipeline>> Load(
      const std::string& model_path, const PipelineOptions& options);

  // Generates one image per request, all with `settings` (denoising_loop.h over the step-wise
  // API below). Not thread-safe: one Run at a time. InvalidArgument for settings the model
  // cannot take (steps, size, scheduler, image inputs). With image inputs (every request has an
  // image, and either all or none a mask) the samples are StableDiffusionXLImg2ImgPipeline's /
  // StableDiffusionXLInpaintPipeline's: they start at SdxlStartStep(steps, strength) from the
  // encoded image noised to that timestep. A 4-channel UNet keeps the input outside the mask
  // after each step; an inpainting UNet (inpainting_unet()) reads the mask and the masked
  // image's latents beside the latents instead, and then every request needs a mask.
  absl::StatusOr<RunResult> Run(const std::vector<ImageRequest>& requests,
                                const RunSettings& settings, const RunHooks& hooks = {});

  // Step-wise API (denoising_sample.h). Not thread-safe, like Run.
  // OK when the model can take `settings` (steps, size, scheduler); InvalidArgument naming the
  // setting otherwise.
  absl::Status CheckSettings(const RunSettings& settings) const;
  // One sample per request with `settings`' schedule and size: prompts encoded (through the
  // prompt cache), initial latents drawn from each request's seed. Adds the cache lookups to
  // `stats`.
  absl::StatusOr<std::vector<DenoisingSample>> StartSamples(
      const std::vector<ImageRequest>& requests, const RunSettings& settings,
      engine::StageTimings* stats);
  // Advances every sample of `set` (not done, all of one size; any mix of step counts, step
  // indices and schedulers) by one step with one UNet call. Returns false, changing nothing,
  // when `interrupt` (polled between UNet blocks; may be empty) asked to stop.
  bool Step(const std::vector<DenoisingSample*>& set, const std::function<bool()>& interrupt);
  // A cheap picture of the sample's current latent (no VAE).
  RgbImage Preview(const DenoisingSample& sample) const;
  // The images of `samples` (done, all of one size), decoded together by the VAE.
  std::vector<RgbImage> Decode(const std::vector<const DenoisingSample*>& samples);

  // Prompt encoding (docs/model-notes.md §2): prompt_embeds [B, 77, D1 + D2] (penultimate
  // hidden states of both encoders) and pooled [B, P] (text_encoder_2's projection), in the
  // pipeline dtype.
  struct PromptEmbeddings {
    torch::Tensor prompt_embeds;
    torch::Tensor pooled;
  };
  PromptEmbeddings EncodePrompts(const std::vector<std::string>& prompts,
                                 const std::vector<std::string>& prompts_2);

  // Latent grid of an image: height / vae_scale_factor x width / vae_scale_factor.
  int vae_scale_factor() const { return vae_scale_factor_; }
  int latent_channels() const { return latent_channels_; }
  // Whether the UNet is an inpainting UNet: its config's in_channels is 2 x latent_channels + 1
  // (latents, mask, masked-image latents), as StableDiffusionXLInpaintPipeline reads it.
  bool inpainting_unet() const { return inpainting_unet_; }
  const PipelineOptions& options() const { return options_; }
  // The style adapters this pipeline offers (options.adapter_folder) on its device.
  AdapterCache& adapters() { return *adapters_; }

 private:
  StableDiffusionXLPipeline() = default;

  // The ids the run's scheduler visits (validated against its step range).
  absl::StatusOr<std::vector<int64_t>> Timesteps(const std::string& scheduler, int steps) const;
  torch::Tensor DecodeLatents(const torch::Tensor& latents);

  PipelineOptions options_;
  std::optional<ClipTokenizer> tokenizer_;
  std::optional<ClipTokenizer> tokenizer_2_;
  ClipTextModel text_encoder_{nullptr};
  ClipTextModel text_encoder_2_{nullptr};
  UNet2DConditionModel unet_{nullptr};
  AutoencoderKLDecoder vae_{nullptr};
  AutoencoderKLEncoder vae_encoder_{nullptr};
  AutoencoderKLConfig vae_config_;
  torch::Dtype vae_dtype_ = torch::kFloat32;
  std::unique_ptr<LcmScheduler> lcm_;
  std::unique_ptr<TlcmTableScheduler> table_;
  int vae_scale_factor_ = 8;
  int latent_channels_ = 4;
  bool inpainting_unet_ = false;
  std::unique_ptr<PromptCache> prompt_cache_;
  std::unique_ptr<AdapterCache> adapters_;
  LoraBatchBuilder lora_batches_;
  std::unique_ptr<DenoiserGraphs> graphs_;  // options.cuda_graphs; null = eager
};

}  // namespace tlcm
