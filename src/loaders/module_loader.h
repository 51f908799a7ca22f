// Loading a WeightStore into a torch::nn::Module by exact name match.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <torch/nn/module.h>

#include "absl/status/status.h"
#include "loaders/weight_store.h"

namespace tlcm {

// Maps a checkpoint key to the module's parameter name; std::nullopt drops the key (e.g. a
// stray `position_ids` buffer). All remappings live in key_remap.h.
using KeyRemap = std::function<std::optional<std::string>(const std::string&)>;

// Where LoadModuleWeights puts the tensors it reads: on `device`, in `dtype` (checkpoints hold
// floating-point tensors only; a non-floating target keeps its dtype, as with Module::to).
struct WeightPlacement {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
};

// Sets every parameter and buffer of `module` from `weights` (after `remap`), converted straight
// to `placement` or, without one, to the dtype and device the parameter already has. A CPU
// parameter whose dtype is the file's ends up viewing the copy-on-write mapping (no copy).
// Fails, changing nothing, unless the match is exact: the error lists missing, unexpected and
// mis-shaped keys (up to 10 of each) and names the source. Not thread-safe with respect to
// `module`.
absl::Status LoadModuleWeights(torch::nn::Module& module, const WeightStore& weights,
                               const KeyRemap& remap,
                               const std::optional<WeightPlacement>& placement = std::nullopt);

}  // namespace tlcm
