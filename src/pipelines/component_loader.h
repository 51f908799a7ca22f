// Building one model component from its folder: config.json -> module -> weights.
#pragma once

#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "loaders/module_loader.h"
#include "pipelines/pipeline_options.h"
#include "loaders/weight_store.h"
#include "util/status_macros.h"

namespace tlcm {

// Parses <dir>/config.json with Config::FromFile, builds Module(config) on CPU in float32 (its
// parameters allocated, not initialised: models/layers/loaded_layers.h) and loads the folder's
// weights (variant preferred) by exact name match after `remap`. The caller fuses LoRA, then
// moves the module to its device and dtype. Errors name the file and key.
template <typename Module, typename Config>
absl::StatusOr<Module> LoadComponent(const std::string& dir, const std::string& variant,
                                     const KeyRemap& remap) {
  TLCM_ASSIGN_OR_RETURN(Config config, Config::FromFile(dir + "/config.json"));
  Module module(config);
  TLCM_ASSIGN_OR_RETURN(WeightStore weights, WeightStore::OpenComponent(dir, variant));
  TLCM_RETURN_IF_ERROR(LoadModuleWeights(*module, weights, remap));
  module->eval();
  return module;
}

// Fuses options.lora_path (if set) into `denoiser` with options.lora_scale, or with the
// adapter config's lora_alpha / r when options.lora_scale_from_config.
absl::Status FuseConfiguredLora(torch::nn::Module& denoiser, const PipelineOptions& options);

}  // namespace tlcm
