#include "loaders/module_loader.h"

#include <map>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tlcm {
namespace {

std::string ShapeString(at::IntArrayRef sizes) {
  return absl::StrCat("[", absl::StrJoin(sizes, ", "), "]");
}

void AppendList(std::string& out, const char* title, const std::vector<std::string>& items) {
  if (items.empty()) return;
  constexpr size_t kShown = 10;
  std::vector<std::string> shown(items.begin(), items.begin() + std::min(items.size(), kShown));
  absl::StrAppend(&out, "; ", items.size(), " ", title, ": ", absl::StrJoin(shown, ", "));
  if (items.size() > kShown) absl::StrAppend(&out, ", ...");
}

}  // namespace

absl::Status LoadModuleWeights(torch::nn::Module& module, const WeightStore& weights,
                               const KeyRemap& remap,
                               const std::optional<WeightPlacement>& placement) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    targets[item.key()] = item.value();
  for (const auto& item : module.named_buffers(/*recurse=*/true))
    targets[item.key()] = item.value();

  std::map<std::string, std::string> source_key;  // module name -> checkpoint key
  std::vector<std::string> unexpected, misshaped, missing;
  for (const std::string& key : weights.Keys()) {
    std::optional<std::string> name = remap ? remap(key) : std::optional<std::string>(key);
    if (!name) continue;
    auto target = targets.find(*name);
    if (target == targets.end()) {
      unexpected.push_back(key);
      continue;
    }
    const auto& entry_shape = weights.Get(key);
    if (!entry_shape.ok()) return entry_shape.status();
    if (entry_shape->sizes() != target->second.sizes()) {
      misshaped.push_back(absl::StrCat(key, " (file ", ShapeString(entry_shape->sizes()),
                                       ", model ", ShapeString(target->second.sizes()), ")"));
      continue;
    }
    source_key[*name] = key;
  }
  for (const auto& [name, tensor] : targets) {
    if (!source_key.count(name) &&
        std::none_of(misshaped.begin(), misshaped.end(),
                     [&](const std::string& m) { return m.rfind(name + " ", 0) == 0; })) {
      missing.push_back(name);
    }
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::string message = absl::StrCat(weights.source(), ": weights do not match the model");
    AppendList(message, "missing", missing);
    AppendList(message, "unexpected", unexpected);
    AppendList(message, "mis-shaped", misshaped);
    return absl::InvalidArgumentError(message);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto tensor = weights.Get(source_key.at(name));
    if (!tensor.ok()) return tensor.status();
    torch::TensorOptions options = target.options();
    if (placement) {
      options = options.device(placement->device);
      if (target.is_floating_point()) options = options.dtype(placement->dtype);
    }
    target.set_data(tensor->to(options));
  }
  return absl::OkStatus();
}

}  // namespace tlcm
