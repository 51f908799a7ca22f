// Building one model component from its folder: config.json -> module -> weights.
#pragma once

#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "loaders/module_loader.h"
#include "loaders/weight_store.h"
#include "pipelines/pipeline_options.h"
#include "util/status_macros.h"

namespace tlcm {

// The first line of `e`'s message, without the backtrace LibTorch's errors carry.
std::string ExceptionSummary(const std::exception& e);

// Why building the module that `config_path` describes threw `e`: RESOURCE_EXHAUSTED when memory
// ran out (the config asks for more than the machine has), INVALID_ARGUMENT otherwise; the
// message names the file and keeps the first line of the exception (LibTorch appends a
// backtrace).
absl::Status ModuleBuildError(const std::string& config_path, const std::exception& e);

// Parses <dir>/config.json with Config::FromFile, builds Module(config) (its parameters
// allocated on the CPU, not initialised: models/layers/loaded_layers.h) and loads the folder's
// weights (variant preferred) by exact name match after `remap`, each converted straight to
// `placement`: no float32 copy of a half-precision model is ever made, and a CPU module in the
// file's dtype views the mapped file. The match is exact, so every parameter and buffer ends up
// on placement.device / placement.dtype. Returns the module in eval mode. Errors name the file
// and key; a config that describes a module that cannot be built (out of memory, impossible
// shapes) is ModuleBuildError's status.
template <typename Module, typename Config>
absl::StatusOr<Module> LoadComponent(const std::string& dir, const std::string& variant,
                                     const KeyRemap& remap, const WeightPlacement& placement) {
  TLCM_ASSIGN_OR_RETURN(Config config, Config::FromFile(dir + "/config.json"));
  Module module(nullptr);
  try {
    module = Module(config);
  } catch (const std::exception& e) {
    return ModuleBuildError(dir + "/config.json", e);
  }
  TLCM_ASSIGN_OR_RETURN(WeightStore weights, WeightStore::OpenComponent(dir, variant));
  TLCM_RETURN_IF_ERROR(LoadModuleWeights(*module, weights, remap, placement));
  module->eval();
  return module;
}

// Fuses options.lora_path (if set) into `denoiser` with options.lora_scale, or with the
// adapter config's lora_alpha / r when options.lora_scale_from_config.
absl::Status FuseConfiguredLora(torch::nn::Module& denoiser, const PipelineOptions& options);

}  // namespace tlcm
