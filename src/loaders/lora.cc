#include "loaders/lora.h"

#include <filesystem>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "loaders/json_config.h"
#include "loaders/lora_keys.h"
#include "models/layers/loaded_layers.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

// lora_alpha / r from the first adapter config file found next to the weights.
absl::StatusOr<std::optional<float>> ReadConfigScale(const fs::path& dir) {
  for (const char* name : {"adapter_config.json", "lora_model_adapter_config.json"}) {
    const fs::path path = dir / name;
    if (!fs::exists(path)) continue;
    TLCM_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path.string()));
    return ParseConfig(path.string(), json, [](const nlohmann::json& j) -> std::optional<float> {
      const double r = j.at("r").get<double>();
      const double alpha = ValueOr(j, "lora_alpha", 8.0);
      if (r <= 0) throw std::invalid_argument("r must be positive");
      if (ValueOr(j, "use_rslora", false) || ValueOr(j, "use_dora", false)) {
        throw std::invalid_argument("rsLoRA / DoRA adapters are not supported");
      }
      return static_cast<float>(alpha / r);
    });
  }
  return std::optional<float>();
}

// The weights file of an adapter folder: PEFT's name, then diffusers' save_lora_weights name.
fs::path WeightsFile(const fs::path& path) {
  if (!fs::is_directory(path)) return path;
  for (const char* name : {"adapter_model.safetensors", "pytorch_lora_weights.safetensors"}) {
    if (fs::exists(path / name)) return path / name;
  }
  return path / "adapter_model.safetensors";  // absent: the open names it
}

absl::Status CheckShapes(const LoraTarget& target, const torch::Tensor& weight,
                         const std::string& source) {
  const torch::Tensor& a = target.pair->a;
  const torch::Tensor& b = target.pair->b;
  const bool fits = target.conv
                        ? a.dim() == 4 && b.dim() == 4 && b.size(2) == 1 && b.size(3) == 1 &&
                              a.size(0) == b.size(1) && b.size(0) == weight.size(0) &&
                              a.sizes().slice(1) == weight.sizes().slice(1)
                        : a.dim() == 2 && b.dim() == 2 && a.size(0) == b.size(1) &&
                              b.size(0) == weight.size(0) && a.size(1) == weight.size(1);
  if (fits) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": LoRA module '", target.module, "' has shapes A ", c10::str(a.sizes()),
                   " B ", c10::str(b.sizes()), " that do not fit the ",
                   target.conv ? "Conv2d" : "Linear", " weight ", c10::str(weight.sizes())));
}

}  // namespace

absl::StatusOr<LoraAdapter> LoadLoraAdapter(const std::string& path) {
  const fs::path weights_path = WeightsFile(path);
  TLCM_ASSIGN_OR_RETURN(WeightStore store, WeightStore::OpenFile(weights_path.string()));
  LoraAdapter adapter;
  adapter.source = weights_path.string();
  bool dotted_names = false;
  for (const std::string& key : store.Keys()) {
    auto parsed = ParseLoraKey(key);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(adapter.source, ": ", parsed.status().message()));
    }
    if (!parsed->has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(adapter.source, ": key '", key,
                       "' is not a LoRA tensor (expected <module>.lora_A.weight / .lora_B.weight, "
                       ".lora.down.weight / .lora.up.weight, lora_unet_<module>.lora_down.weight / "
                       ".lora_up.weight / .alpha)"));
    }
    const LoraKey& k = **parsed;
    (k.underscored ? adapter.underscored_names : dotted_names) = true;
    TLCM_ASSIGN_OR_RETURN(torch::Tensor tensor, store.Get(key));
    LoraAdapter::Pair& pair = adapter.modules[k.module];
    switch (k.role) {
      case LoraKey::Role::kDown:
        pair.a = tensor;
        break;
      case LoraKey::Role::kUp:
        pair.b = tensor;
        break;
      case LoraKey::Role::kAlpha:
        if (tensor.numel() != 1) {
          return absl::InvalidArgumentError(
              absl::StrCat(adapter.source, ": key '", key, "' must hold one number"));
        }
        pair.alpha = tensor.to(torch::kFloat32).item<float>();
        break;
    }
  }
  if (adapter.underscored_names && dotted_names) {
    return absl::InvalidArgumentError(
        absl::StrCat(adapter.source, ": mixes kohya (lora_unet_) keys with dotted module keys"));
  }
  for (const auto& [module, pair] : adapter.modules) {
    if (!pair.a.defined() || !pair.b.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(adapter.source, ": module '", module,
                       "' has only one of its down (A) and up (B) matrices"));
    }
  }
  TLCM_ASSIGN_OR_RETURN(adapter.config_scale, ReadConfigScale(weights_path.parent_path()));
  return adapter;
}

float ModuleScale(const LoraAdapter& adapter, const LoraAdapter::Pair& pair) {
  if (pair.alpha) return *pair.alpha / static_cast<float>(pair.a.size(0));
  return adapter.config_scale.value_or(1.0f);
}

absl::StatusOr<std::vector<LoraTarget>> ResolveLoraTargets(torch::nn::Module& model,
                                                           const LoraAdapter& adapter) {
  std::map<std::string, std::pair<std::string, std::shared_ptr<torch::nn::Module>>> layers;
  for (const auto& item : model.named_modules()) {
    std::string key = item.key();
    if (adapter.underscored_names) key = absl::StrReplaceAll(key, {{".", "_"}});
    layers[key] = {item.key(), item.value()};
  }
  std::vector<LoraTarget> targets;
  for (const auto& [name, pair] : adapter.modules) {
    auto it = layers.find(name);
    const auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrCat(adapter.source, ": LoRA module '", name, "' ", what));
    };
    if (it == layers.end()) return error("matches no module of the model");
    LoraTarget target{it->second.first, it->second.second, false, &pair};
    torch::Tensor weight;
    if (auto* linear = target.layer->as<LoadedLinearImpl>()) {
      weight = linear->weight;
    } else if (auto* conv = target.layer->as<LoadedConv2dImpl>()) {
      weight = conv->weight;
      target.conv = true;
    } else {
      return error("is neither a Linear nor a Conv2d layer");
    }
    TLCM_RETURN_IF_ERROR(CheckShapes(target, weight, adapter.source));
    targets.push_back(std::move(target));
  }
  return targets;
}

absl::Status FuseLora(torch::nn::Module& model, const LoraAdapter& adapter, float scale) {
  // Resolve everything first so that a bad adapter leaves the model untouched.
  TLCM_ASSIGN_OR_RETURN(std::vector<LoraTarget> targets, ResolveLoraTargets(model, adapter));
  torch::NoGradGuard no_grad;
  for (const LoraTarget& target : targets) {
    torch::Tensor weight = target.conv ? target.layer->as<LoadedConv2dImpl>()->weight
                                       : target.layer->as<LoadedLinearImpl>()->weight;
    const torch::Tensor a = target.pair->a.to(torch::kFloat32).flatten(1);
    const torch::Tensor b = target.pair->b.to(torch::kFloat32).flatten(1);
    const torch::Tensor delta = torch::matmul(b, a).view(weight.sizes());
    torch::Tensor fused = weight.to(torch::kFloat32) + delta.to(weight.device()) * scale;
    weight.copy_(fused.to(weight.scalar_type()));
  }
  return absl::OkStatus();
}

}  // namespace tlcm
