// Options and per-run types shared by the SDXL and FLUX pipelines.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "engine/pipeline.h"
#include "image/rgb_image.h"
#include "loaders/lora.h"
#include "pipelines/device_adapter.h"

namespace tlcm {

struct PipelineOptions {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;  // weights and activations of the denoiser and encoders
  std::string variant;                   // weight file variant ("fp16"); empty = plain files
  std::string lora_path;                 // PEFT adapter folder or file; empty = none
  float lora_scale = kTlcmLoraScale;
  bool lora_scale_from_config = false;  // use lora_alpha / r of the adapter's config instead
  std::string vae_path;                 // replacement VAE folder; empty = <model>/vae
  // Style adapters offered per request (pipelines/adapter_cache.h); empty = none.
  std::string adapter_folder;
  int64_t adapter_cache_bytes = engine::kDefaultAdapterCacheBytes;  // device bytes, resident
  int max_sequence_length = 512;                                    // FLUX: T5 tokens
  int prompt_cache_entries = 0;  // LRU of prompt embeddings; 0 = no cache
  // The VAE decoder's dtype; unset = VaeDtype()'s choice.
  std::optional<torch::Dtype> vae_dtype;
  // Convolution weights (UNet, VAE decoder) stored channels-last: models/layers/memory_format.h.
  bool channels_last = true;
  // Denoiser calls replayed from CUDA graphs captured per input shape (denoiser_graphs.h); CUDA
  // devices only (loading refuses it elsewhere).
  bool cuda_graphs = false;
};

// The dtype the VAE decodes in: options.vae_dtype when set; otherwise options.dtype, except that
// float16 runs decode in bfloat16 when `upcast_float16` (SDXL's VAE with force_upcast in its
// config overflows in float16; diffusers upcasts it to float32 instead). bfloat16 has float32's
// range, so it cannot overflow either, at half the bytes and on the tensor cores: the decode was
// a third of a 4-step float32-upcast run on an H200. Against a float32 decode it moves images by
// a mean of about 0.4 and at most 4-5 uint8 levels (tests: *BFloat16VaeDecodeStaysCloseToFloat32).
// GPUs without native bfloat16 (compute capability below 8.0) need vae_dtype fp32.
torch::Dtype VaeDtype(const PipelineOptions& options, bool upcast_float16);

// "fp32" | "fp16" | "bf16" | "auto" (fp32 on CPU; on CUDA `cuda_auto`). InvalidArgument otherwise.
absl::StatusOr<torch::Dtype> ParseDtype(const std::string& name, const torch::Device& device,
                                        torch::Dtype cuda_auto);
// "cpu" | "cuda" | "cuda:N". InvalidArgument for anything else or a CUDA device that is absent.
absl::StatusOr<torch::Device> ParseDevice(const std::string& name);

// One image of a run: what it shows, as the engine states it (engine::ImageJob: prompts, seed,
// guidance, and the image inputs shared with its request - the image to start from (img2img)
// and with it a mask whose white pixels are repainted (inpainting), both resized to the run's
// size, pipelines/image_inputs.h), and its style adapters loaded on the pipeline's device. The
// pipeline reads `adapters`, never the adapter names in `loras`.
struct ImageRequest : engine::ImageJob {
  AdapterSet adapters = {};  // unfused, on top of the TLCM LoRA
};

// Shape and schedule shared by all images of a run.
struct RunSettings {
  int steps = 4;
  int width = 1024;
  int height = 1024;
  std::string scheduler;  // empty = the pipeline's default
  // With image inputs: how much of the schedule runs, (0, 1]; 1 starts from (nearly) pure noise.
  double strength = 1.0;
};

// Callbacks during a run, on the calling thread. `image` indexes the run's ImageRequests.
struct RunHooks {
  // Polled before the first step and after each step; true drops the image from the run.
  std::function<bool(size_t image)> should_drop;
  // After step `step` (1-based) of `total`, for the images still running.
  std::function<void(int step, int total)> on_step;
  // Whether a preview is wanted for `image` after this step.
  std::function<bool(size_t image)> wants_preview;
  std::function<void(size_t image, int step, RgbImage preview)> on_preview;
};

// What a run produced: images[i] is empty for a dropped image; what each stage cost.
struct RunResult {
  std::vector<std::optional<RgbImage>> images;
  engine::StageTimings timings;
};

}  // namespace tlcm
