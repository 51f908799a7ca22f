// PEFT LoRA adapters, fused into a model's weights once at load time (zero run-time cost).
#pragma once

#include <map>
#include <optional>
#include <string>

#include <torch/nn/module.h>

#include "absl/status/statusor.h"
#include "loaders/weight_store.h"

namespace tlcm {

// The TLCM authors build LoraConfig(r=64, ...) without lora_alpha and load the weights into it,
// so PEFT's default alpha 8 applies: scale = 8 / 64.
inline constexpr float kTlcmLoraScale = 8.0f / 64.0f;

// A PEFT adapter: per target module (its path inside the model), the A and B matrices.
struct LoraAdapter {
  struct Pair {
    torch::Tensor a;  // lora_A: [r, in] (Linear) or [r, in, kh, kw] (Conv2d)
    torch::Tensor b;  // lora_B: [out, r] (Linear) or [out, r, 1, 1] (Conv2d)
  };
  std::string source;                   // the weights file, for messages
  std::map<std::string, Pair> modules;  // module path -> matrices
  // lora_alpha / r from the adapter's config file, when one was found.
  std::optional<float> config_scale;
};

// Reads an adapter from a folder (adapter_model.safetensors plus adapter_config.json or the
// TLCM SDXL release's lora_model_adapter_config.json) or from a .safetensors file. Accepted key
// forms: `base_model.model.<module>.lora_{A,B}.weight`, `<module>.lora_{A,B}.weight`, and the
// same behind a diffusers `unet.` / `transformer.` prefix. Errors name the file and the key.
absl::StatusOr<LoraAdapter> LoadLoraAdapter(const std::string& path);

// Fuses `adapter` into `model`: W += scale * (B @ A) for a LoadedLinear, the 1x1-by-kxk product
// for a LoadedConv2d (models/layers/loaded_layers.h), computed in float32 and written back in the
// weight's dtype on the weight's device. Fails, before changing any weight, when an adapter
// module does not exist in the model, is neither Linear nor Conv2d, or has mismatched shapes; the
// message names the adapter file and the module.
absl::Status FuseLora(torch::nn::Module& model, const LoraAdapter& adapter, float scale);

}  // namespace tlcm
