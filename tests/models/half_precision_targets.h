// The (device, dtype) pairs on which the half-precision smoke tests run: bfloat16 and float16 on
// the CPU always, both on CUDA too when a GPU is present.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
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

// For GoogleTest's messages.
inline void PrintTo(const HalfPrecisionTarget& target, std::ostream* os) {
  *os << TargetName(target);
}

// Half-precision tolerances relative to max |float32 output|, about twice the error diffusers
// itself shows on the test models (whose weights are scaled up to make every path matter):
// its bfloat16 UNet deviates from float32 by up to 6-7% of max |out| (0.8% on average), float16
// by 0.7% (0.1%); its VAE decoder by 1% (bfloat16) and 0.14% (float16).
struct HalfPrecisionTolerance {
  double max_rel;   // max |diff| / max |expected|
  double mean_rel;  // mean |diff| / max |expected|
};
inline HalfPrecisionTolerance UNetTolerance(torch::Dtype dtype) {
  return dtype == torch::kBFloat16 ? HalfPrecisionTolerance{0.15, 0.02}
                                   : HalfPrecisionTolerance{0.015, 0.002};
}
inline HalfPrecisionTolerance VaeTolerance(torch::Dtype dtype) {
  return dtype == torch::kBFloat16 ? HalfPrecisionTolerance{0.025, 0.005}
                                   : HalfPrecisionTolerance{0.004, 0.001};
}

// Checks `actual` (any dtype / device) against the float32 `expected` with `tolerance`.
inline ::testing::AssertionResult HalfClose(const torch::Tensor& actual,
                                            const torch::Tensor& expected,
                                            HalfPrecisionTolerance tolerance) {
  const torch::Tensor a = actual.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor b = expected.to(torch::kFloat64);
  if (!torch::isfinite(a).all().item<bool>()) return ::testing::AssertionFailure() << "not finite";
  const double scale = b.abs().max().item<double>();
  const double max_rel = (a - b).abs().max().item<double>() / scale;
  const double mean_rel = (a - b).abs().mean().item<double>() / scale;
  if (max_rel <= tolerance.max_rel && mean_rel <= tolerance.mean_rel) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "max |diff| / max |expected| " << max_rel << " (limit " << tolerance.max_rel
         << "), mean " << mean_rel << " (limit " << tolerance.mean_rel << ")";
}

inline std::vector<HalfPrecisionTarget> HalfPrecisionTargets() {
  std::vector<HalfPrecisionTarget> targets = {{torch::kCPU, torch::kBFloat16},
                                              {torch::kCPU, torch::kFloat16}};
  if (torch::cuda::is_available()) {
    targets.push_back({torch::kCUDA, torch::kFloat16});
    targets.push_back({torch::kCUDA, torch::kBFloat16});
  }
  return targets;
}

}  // namespace tlcm::testing
