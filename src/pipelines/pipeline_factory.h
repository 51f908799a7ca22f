// Builds engine pipelines from model folders. Torch-free header: the server includes it without
// seeing LibTorch; the implementation (in tlcm_core) loads the SDXL / FLUX pipelines.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/pipeline.h"

namespace tlcm {

// Where a model's files are and how to run it. Paths come only from the operator's
// configuration, never from a request.
struct ModelSpec {
  std::string name;             // the name clients ask for, e.g. "sdxl-tlcm"
  std::string base_model_path;  // diffusers folder with model_index.json (family detected from it)
  std::string lora_path;        // PEFT adapter folder or .safetensors file; empty = no LoRA
  // LoRA scale. Negative = the TLCM default 8/64 = 0.125 (how the TLCM authors' code loads the
  // adapters); set `lora_scale_from_config` to use lora_alpha / r from adapter_config.json.
  float lora_scale = -1.0f;
  bool lora_scale_from_config = false;
  std::string dtype = "auto";  // "fp32", "fp16", "bf16"; auto = fp32 on CPU, fp16 (SDXL) /
                               // bf16 (FLUX) on CUDA
  std::string variant;         // weight file variant, e.g. "fp16"; empty = plain files
  std::string vae_path;        // optional replacement VAE folder (e.g. sdxl-vae-fp16-fix)
  // VAE decoder dtype: "fp32", "fp16", "bf16"; "auto" (or empty) = VaeDtype()'s rule in
  // pipelines/pipeline_options.h.
  std::string vae_dtype = "auto";
  // UNet / VAE convolution weights NHWC (PipelineOptions::channels_last). A benchmark switch of
  // tlcm-generate and pipeline_bench; the server configuration keeps the default.
  bool channels_last = true;
  bool cuda_graphs = false;       // PipelineOptions::cuda_graphs
  int max_sequence_length = 512;  // FLUX T5 tokens
  int min_steps = 2;
  int max_steps = 8;
  int default_steps = 4;
  int default_width = 0;  // 0 = the family's default (1024)
  int default_height = 0;
  int64_t max_pixels = 0;          // 0 = 2048 * 2048
  int prompt_cache_entries = 256;  // LRU of prompt embeddings per device; 0 disables it
  // Style adapters requests may name (docs/style-adapters.md): a folder of LoRA files; empty =
  // none. Resident adapters hold at most adapter_cache_bytes per device.
  std::string adapter_folder;
  int64_t adapter_cache_bytes = engine::kDefaultAdapterCacheBytes;
  int max_loras = engine::kDefaultMaxLoras;  // per request; ignored without adapter_folder
};

// Loads `spec` onto `device` ("cpu", "cuda:N"). Errors name the folder / file / key at fault.
absl::StatusOr<std::unique_ptr<engine::Pipeline>> CreatePipeline(const ModelSpec& spec,
                                                                 const std::string& device);

// The devices LibTorch can use: "cpu" plus "cuda:0".."cuda:N-1" when CUDA is available.
std::vector<std::string> AvailableDevices();

// Sets LibTorch's intra-op thread count (0 = the number of cores). LibTorch starts with one
// thread here, so every binary calls this at start-up.
void SetComputeThreads(int threads);

}  // namespace tlcm
