// Command-line flags of tlcm-generate. The names follow the TLCM authors' inference.py
// (--prompt, --output_dir, --lora_path, --base_model_path, --infer-steps, --resolution,
// --batch_size), so their commands work unchanged; the rest are ours.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pipelines/pipeline_factory.h"

namespace tlcm {

struct GenerateFlags {
  std::string prompt;
  std::string prompt_2;
  std::string output_dir = "outputs";
  std::string base_model_path;
  std::string lora_path;
  int steps = 4;   // --infer-steps
  int width = 0;   // 0 = --resolution
  int height = 0;  // 0 = --resolution
  int resolution = 1024;
  int batch_size = 1;            // images, seeds seed .. seed + batch_size - 1
  std::optional<uint64_t> seed;  // absent = random, printed
  std::string scheduler;         // empty = the model's default (lcm / flow_match_tlcm)
  std::string format = "png";    // png | jpg | webp
  int quality = 90;              // jpg / webp
  std::string device = "cpu";
  std::string dtype = ModelSpec().dtype;
  float lora_scale = -1.0f;  // negative = the TLCM default 0.125
  bool lora_scale_from_config = false;
  std::optional<float> guidance_scale;  // FLUX; default 7
  int max_sequence_length = 512;        // FLUX T5 tokens
  std::string variant;
  std::string vae_path;
  std::string vae_dtype = ModelSpec().vae_dtype;
  bool channels_last = ModelSpec().channels_last;
  bool cuda_graphs = ModelSpec().cuda_graphs;
  int threads = 0;  // LibTorch threads; 0 = all cores
  // --lora NAME_OR_PATH:SCALE (repeatable): style adapters for every image. A PATH (a
  // .safetensors file or an adapter folder) names the adapter by its stem in its own folder.
  std::vector<engine::LoraChoice> loras;
  std::string adapter_folder;      // --adapter_folder, or the folder of the --lora paths
  std::string image;               // --image: picture to start from (img2img); empty = none
  std::string mask;                // --mask: with --image, white = repaint (inpainting)
  std::optional<double> strength;  // --strength (0, 1]; absent = engine::DefaultStrength
};

// Parses argv (without argv[0]); `--name value` and `--name=value` both work. InvalidArgument
// names the flag and the rule for unknown flags, missing values, bad numbers and ranges.
absl::StatusOr<GenerateFlags> ParseGenerateFlags(const std::vector<std::string>& args);

// The model the flags name, served under `name`, with the prompt cache off (one-shot runs
// encode every prompt, as diffusers does).
ModelSpec ModelSpecOf(const GenerateFlags& flags, std::string name);

// The usage text printed for --help and after a flag error.
std::string GenerateUsage();

// `prompt` made safe as a file name: characters other than letters, digits, '-', '_' and '.'
// become '_', at most 100 bytes, never empty.
std::string SafeFileStem(const std::string& prompt);

}  // namespace tlcm
