#include "pipelines/component_loader.h"

#include "absl/strings/str_cat.h"
#include "loaders/lora.h"

namespace tlcm {

absl::Status FuseConfiguredLora(torch::nn::Module& denoiser, const PipelineOptions& options) {
  if (options.lora_path.empty()) return absl::OkStatus();
  TLCM_ASSIGN_OR_RETURN(LoraAdapter adapter, LoadLoraAdapter(options.lora_path));
  float scale = options.lora_scale;
  if (options.lora_scale_from_config) {
    if (!adapter.config_scale) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.lora_path, ": the LoRA scale should come from the adapter config, but there is none"));
    }
    scale = *adapter.config_scale;
  }
  return FuseLora(denoiser, adapter, scale);
}

}  // namespace tlcm
