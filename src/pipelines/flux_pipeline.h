// FluxPipeline with TLCM: CLIP pooled + T5 token embeddings, the FLUX transformer with the TLCM
// LoRA fused (guidance-distilled: one forward per step), the FlowMatch TLCM scheduler and the
// 16-channel VAE decoder.
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
#include "models/t5_encoder.h"
#include "models/transformer_flux.h"
#include "pipelines/adapter_cache.h"
#include "pipelines/denoiser_graphs.h"
#include "pipelines/denoising_sample.h"
#include "pipelines/pipeline_options.h"
#include "pipelines/prompt_cache.h"
#include "schedulers/flow_match_tlcm_scheduler.h"
#include "text/clip_tokenizer.h"
#include "text/t5_tokenizer.h"

namespace tlcm {

class FluxPipeline {
 public:
  static constexpr const char* kDefaultScheduler = "flow_match_tlcm";
  static constexpr float kDefaultGuidanceScale = 7.0f;  // the TLCM FLUX setting

  // Loads every component of the diffusers folder `model_path` (a FluxPipeline), fuses the LoRA
  // into the transformer and moves the models to options.device / options.dtype. Errors name
  // the folder, file and key at fault.
  static absl::StatusOr<std::unique_ptr<FluxPipeline>> Load(const std::string& model_path,
                                                            const PipelineOptions& options);

  // Generates one image per request (each with its own guidance scale), all with `settings`
  // (denoising_loop.h over the step-wise API below). Not thread-safe.
  absl::StatusOr<RunResult> Run(const std::vector<ImageRequest>& requests,
                                const RunSettings& settings, const RunHooks& hooks = {});

  // Step-wise API (denoising_sample.h); the contracts of StableDiffusionXLPipeline's. Not
  // thread-safe.
  absl::Status CheckSettings(const RunSettings& settings) const;
  // Prompts encoded through the cache (T5 time added to stats->text_encode_t5_ms), initial
  // latents drawn and packed into tokens, sigmas for the size.
  absl::StatusOr<std::vector<DenoisingSample>> StartSamples(
      const std::vector<ImageRequest>& requests, const RunSettings& settings,
      engine::StageTimings* stats);
  // One transformer forward for every sample of `set` (each with its own sigma and guidance).
  bool Step(const std::vector<DenoisingSample*>& set, const std::function<bool()>& interrupt);
  RgbImage Preview(const DenoisingSample& sample) const;
  std::vector<RgbImage> Decode(const std::vector<const DenoisingSample*>& samples);

  // Prompt encoding (docs/model-notes.md §2, §4): prompt_embeds [B, L, D] from T5
  // (L = max_sequence_length) and pooled [B, P] from CLIP, in the pipeline dtype; t5_ms is the
  // wall time of the T5 half (tokenizing + encoder forward).
  struct PromptEmbeddings {
    torch::Tensor prompt_embeds;
    torch::Tensor pooled;
    double t5_ms = 0;
  };
  PromptEmbeddings EncodePrompts(const std::vector<std::string>& prompts,
                                 const std::vector<std::string>& prompts_2);

  // Pixels per latent cell along each axis is 2 * vae_scale_factor (latents are packed 2x2).
  int vae_scale_factor() const { return vae_scale_factor_; }
  const PipelineOptions& options() const { return options_; }
  // The style adapters this pipeline offers (options.adapter_folder) on its device.
  AdapterCache& adapters() { return *adapters_; }

 private:
  FluxPipeline() = default;

  PipelineOptions options_;
  std::optional<ClipTokenizer> tokenizer_;
  std::optional<T5Tokenizer> tokenizer_2_;
  ClipTextModel text_encoder_{nullptr};
  T5EncoderModel text_encoder_2_{nullptr};
  FluxTransformer2DModel transformer_{nullptr};
  bool guidance_embeds_ = false;
  AutoencoderKLDecoder vae_{nullptr};
  AutoencoderKLEncoder vae_encoder_{nullptr};
  AutoencoderKLConfig vae_config_;
  torch::Dtype vae_dtype_ = torch::kFloat32;
  std::unique_ptr<FlowMatchTlcmScheduler> scheduler_;
  int vae_scale_factor_ = 8;
  int latent_channels_ = 16;
  std::unique_ptr<PromptCache> prompt_cache_;
  std::unique_ptr<AdapterCache> adapters_;
  LoraBatchBuilder lora_batches_;
  std::unique_ptr<DenoiserGraphs> graphs_;  // options.cuda_graphs; null = eager
};

}  // namespace tlcm
