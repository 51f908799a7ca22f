// LoRA adapters: read from PEFT, diffusers or kohya files (loaders/lora_keys.h), matched to a
// model's layers, and fused into its weights once at load time (zero run-time cost; the TLCM
// LoRA) or applied per sample at run time (pipelines/adapter_cache.h; style adapters).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "absl/status/statusor.h"
#include "loaders/weight_store.h"

namespace tlcm {

// The TLCM authors build LoraConfig(r=64, ...) without lora_alpha and load the weights into it,
// so PEFT's default alpha 8 applies: scale = 8 / 64.
inline constexpr float kTlcmLoraScale = 8.0f / 64.0f;

// An adapter: per target module, the A and B matrices.
struct LoraAdapter {
  struct Pair {
    torch::Tensor a;  // lora_A / lora_down: [r, in] (Linear) or [r, in, kh, kw] (Conv2d)
    torch::Tensor b;  // lora_B / lora_up: [out, r] (Linear) or [out, r, 1, 1] (Conv2d)
    std::optional<float> alpha =
        std::nullopt;  // the file's own alpha for this module (kohya, diffusers)
  };
  std::string source;                   // the weights file, for messages
  std::map<std::string, Pair> modules;  // module path (see underscored_names) -> matrices
  // kohya files write the module path with '_' for '.'; ResolveLoraTargets matches them so.
  bool underscored_names = false;
  // lora_alpha / r from the adapter's config file, when one was found.
  std::optional<float> config_scale;
};

// Reads an adapter from a folder (adapter_model.safetensors or pytorch_lora_weights.safetensors,
// plus adapter_config.json or the TLCM SDXL release's lora_model_adapter_config.json) or from a
// .safetensors file, in any key layout of loaders/lora_keys.h. Errors name the file and the key.
absl::StatusOr<LoraAdapter> LoadLoraAdapter(const std::string& path);

// The factor of B A for `pair` at adapter weight 1, as diffusers and PEFT scale it: the module's
// alpha / r when the file gives one, else the config's lora_alpha / r, else 1 (diffusers loads
// a file without alphas with lora_alpha = r).
float ModuleScale(const LoraAdapter& adapter, const LoraAdapter::Pair& pair);

// An adapter module matched to the model layer it changes.
struct LoraTarget {
  std::string module;                        // the model's name of the layer
  std::shared_ptr<torch::nn::Module> layer;  // a LoadedLinear or LoadedConv2d
  bool conv = false;
  const LoraAdapter::Pair* pair = nullptr;  // points into the adapter
};

// Matches every module of `adapter` to a layer of `model` (by name; for underscored names, by
// the model's name with '.' written as '_') and checks the shapes. InvalidArgument naming the
// adapter file and the module when a module matches no layer, is neither Linear nor Conv2d, or
// has shapes that do not fit the layer.
absl::StatusOr<std::vector<LoraTarget>> ResolveLoraTargets(torch::nn::Module& model,
                                                           const LoraAdapter& adapter);

// Fuses `adapter` into `model`: W += scale * (B @ A) for a LoadedLinear, the 1x1-by-kxk product
// for a LoadedConv2d (models/layers/loaded_layers.h), computed in float32 and written back in the
// weight's dtype on the weight's device. Fails, before changing any weight, when an adapter
// module does not exist in the model, is neither Linear nor Conv2d, or has mismatched shapes; the
// message names the adapter file and the module.
absl::Status FuseLora(torch::nn::Module& model, const LoraAdapter& adapter, float scale);

}  // namespace tlcm
