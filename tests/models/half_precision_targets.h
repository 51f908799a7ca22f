// The (device, dtype) pairs on which the half-precision smoke tests run: bfloat16 on the CPU
// always; float16 on CUDA when a GPU is present, and on the CPU when this LibTorch has CPU
// float16 kernels (LibTorch 2.x does; Debian's 1.13 has no CPU float16 convolution, GroupNorm or
// matmul, so there float16 is covered only on a GPU machine).
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

namespace tlcm::testing {

struct HalfPrecisionTarget {
  torch::Device device;
  torch::Dtype dtype;
};

inline std::string TargetName(const HalfPrecisionTarget& target) {
  return std::string(target.device.is_cuda() ? "cuda_" : "cpu_") +
         (target.dtype == torch::kFloat16 ? "float16" : "bfloat16");
}

// True when the CPU kernels the UNet and VAE need exist for float16.
inline bool CpuHasFloat16Kernels() {
  try {
    torch::NoGradGuard no_grad;
    auto x = torch::ones({1, 2, 2, 2}, torch::kFloat16);
    torch::conv2d(x, torch::ones({2, 2, 1, 1}, torch::kFloat16));
    torch::group_norm(x, 1);
    torch::silu(x);
    torch::matmul(x, x);
    return true;
  } catch (const c10::Error&) {
    return false;
  }
}

inline std::vector<HalfPrecisionTarget> HalfPrecisionTargets() {
  std::vector<HalfPrecisionTarget> targets = {{torch::kCPU, torch::kBFloat16}};
  if (CpuHasFloat16Kernels()) targets.push_back({torch::kCPU, torch::kFloat16});
  if (torch::cuda::is_available()) {
    targets.push_back({torch::kCUDA, torch::kFloat16});
    targets.push_back({torch::kCUDA, torch::kBFloat16});
  }
  return targets;
}

}  // namespace tlcm::testing
