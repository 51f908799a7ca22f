#include "loaders/lora.h"

#include <filesystem>

#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "loaders/json_config.h"
#include "models/layers/loaded_layers.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

// Splits a key into (module path, "A" | "B"); nullopt when it is not a LoRA matrix key.
std::optional<std::pair<std::string, char>> ParseLoraKey(std::string key) {
  for (const char* prefix : {"base_model.model.", "unet.", "transformer."}) {
    if (absl::StartsWith(key, prefix)) {
      key = key.substr(std::string(prefix).size());
      break;
    }
  }
  for (char which : {'A', 'B'}) {
    const std::string suffix = absl::StrCat(".lora_", std::string(1, which), ".weight");
    if (absl::EndsWith(key, suffix)) {
      return std::make_pair(key.substr(0, key.size() - suffix.size()), which);
    }
  }
  return std::nullopt;
}

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

}  // namespace

absl::StatusOr<LoraAdapter> LoadLoraAdapter(const std::string& path) {
  fs::path weights_path = path;
  if (fs::is_directory(weights_path)) weights_path /= "adapter_model.safetensors";
  TLCM_ASSIGN_OR_RETURN(WeightStore store, WeightStore::OpenFile(weights_path.string()));
  LoraAdapter adapter;
  adapter.source = weights_path.string();
  for (const std::string& key : store.Keys()) {
    auto parsed = ParseLoraKey(key);
    if (!parsed) {
      return absl::InvalidArgumentError(absl::StrCat(
          adapter.source, ": key '", key,
          "' is not a LoRA matrix (expected <module>.lora_A.weight / .lora_B.weight)"));
    }
    TLCM_ASSIGN_OR_RETURN(torch::Tensor tensor, store.Get(key));
    LoraAdapter::Pair& pair = adapter.modules[parsed->first];
    (parsed->second == 'A' ? pair.a : pair.b) = tensor;
  }
  for (const auto& [module, pair] : adapter.modules) {
    if (!pair.a.defined() || !pair.b.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(adapter.source, ": module '", module, "' has only one of lora_A / lora_B"));
    }
  }
  TLCM_ASSIGN_OR_RETURN(adapter.config_scale, ReadConfigScale(weights_path.parent_path()));
  return adapter;
}

absl::Status FuseLora(torch::nn::Module& model, const LoraAdapter& adapter, float scale) {
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules;
  for (const auto& item : model.named_modules()) modules[item.key()] = item.value();

  // Validate everything first so that a bad adapter leaves the model untouched.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> updates;  // (weight, delta) pairs
  for (const auto& [name, pair] : adapter.modules) {
    auto it = modules.find(name);
    const auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrCat(adapter.source, ": LoRA module '", name, "' ", what));
    };
    if (it == modules.end()) return error("matches no module of the model");
    torch::Tensor weight;
    torch::Tensor delta;
    const torch::Tensor a = pair.a.to(torch::kFloat32), b = pair.b.to(torch::kFloat32);
    if (auto* linear = it->second->as<LoadedLinearImpl>()) {
      weight = linear->weight;
      if (a.dim() != 2 || b.dim() != 2 || a.size(0) != b.size(1) || b.size(0) != weight.size(0) ||
          a.size(1) != weight.size(1)) {
        return error(absl::StrCat("has shapes A ", c10::str(a.sizes()), " B ", c10::str(b.sizes()),
                                  " that do not fit the Linear weight ", c10::str(weight.sizes())));
      }
      delta = torch::matmul(b, a);
    } else if (auto* conv = it->second->as<LoadedConv2dImpl>()) {
      weight = conv->weight;
      if (a.dim() != 4 || b.dim() != 4 || b.size(2) != 1 || b.size(3) != 1 ||
          a.size(0) != b.size(1) || b.size(0) != weight.size(0) ||
          a.sizes().slice(1) != weight.sizes().slice(1)) {
        return error(absl::StrCat("has shapes A ", c10::str(a.sizes()), " B ", c10::str(b.sizes()),
                                  " that do not fit the Conv2d weight ", c10::str(weight.sizes())));
      }
      delta = torch::matmul(b.flatten(1), a.flatten(1)).view(weight.sizes());
    } else {
      return error("is neither a Linear nor a Conv2d layer");
    }
    updates.emplace_back(weight, delta);
  }
  torch::NoGradGuard no_grad;
  for (auto& [weight, delta] : updates) {
    torch::Tensor fused = weight.to(torch::kFloat32) + delta.to(weight.device()) * scale;
    weight.copy_(fused.to(weight.scalar_type()));
  }
  return absl::OkStatus();
}

}  // namespace tlcm
