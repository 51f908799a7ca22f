#include "pipelines/pipeline_options.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tlcm {

absl::StatusOr<torch::Dtype> ParseDtype(const std::string& name, const torch::Device& device,
                                        torch::Dtype cuda_auto) {
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "fp16" || name == "float16") return torch::kFloat16;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "auto" || name.empty()) return device.is_cuda() ? cuda_auto : torch::kFloat32;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype '", name, "' is not one of fp32, fp16, bf16, auto"));
}

torch::Dtype VaeDtype(const PipelineOptions& options, bool upcast_float16) {
  if (options.vae_dtype) return *options.vae_dtype;
  return options.dtype == torch::kFloat16 && upcast_float16 ? torch::kBFloat16 : options.dtype;
}

absl::StatusOr<torch::Device> ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  int index = 0;
  if (name == "cuda" ||
      (absl::StartsWith(name, "cuda:") && absl::SimpleAtoi(name.substr(5), &index) && index >= 0)) {
    if (!torch::cuda::is_available() || index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "device '", name, "' is not available (", torch::cuda::device_count(), " CUDA devices)"));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("device '", name, "' is not 'cpu', 'cuda' or 'cuda:N'"));
}

}  // namespace tlcm
