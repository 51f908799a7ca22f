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

// Sets every parameter and buffer of `module` from `weights` (after `remap`), converted to the
// dtype and device the parameter already has. A CPU float32 parameter ends up viewing the
// copy-on-write mapping (no copy). Fails, changing nothing, unless the match is exact: the
// error lists missing, unexpected and mis-shaped keys (up to 10 of each) and names the source.
// Not thread-safe with respect to `module`.
absl::Status LoadModuleWeights(torch::nn::Module& module, const WeightStore& weights,
                               const KeyRemap& remap);

}  // namespace tlcm
