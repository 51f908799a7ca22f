#include "pipelines/component_loader.h"

#include <new>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "loaders/lora.h"

namespace tlcm {

std::string ExceptionSummary(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  const std::string text =
      torch_error != nullptr ? torch_error->what_without_backtrace() : e.what();
  return text.substr(0, text.find('\n'));
}

absl::Status ModuleBuildError(const std::string& config_path, const std::exception& e) {
  const std::string summary = ExceptionSummary(e);
  const std::string message =
      absl::StrCat(config_path, ": the model it describes cannot be built: ", summary);
  const bool out_of_memory = dynamic_cast<const std::bad_alloc*>(&e) != nullptr ||
                             dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr ||
                             absl::StrContains(summary, "can't allocate memory") ||
                             absl::StrContains(summary, "out of memory");
  return out_of_memory ? absl::ResourceExhaustedError(message)
                       : absl::InvalidArgumentError(message);
}

absl::Status FuseConfiguredLora(torch::nn::Module& denoiser, const PipelineOptions& options) {
  if (options.lora_path.empty()) return absl::OkStatus();
  TLCM_ASSIGN_OR_RETURN(LoraAdapter adapter, LoadLoraAdapter(options.lora_path));
  float scale = options.lora_scale;
  if (options.lora_scale_from_config) {
    if (!adapter.config_scale) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.lora_path,
                       ": the LoRA scale should come from the adapter config, but there is none"));
    }
    scale = *adapter.config_scale;
  }
  return FuseLora(denoiser, adapter, scale);
}

}  // namespace tlcm
