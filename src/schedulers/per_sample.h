// Broadcasting per-sample scalars over a batch tensor.
#pragma once

#include <vector>

#include <torch/torch.h>

namespace tlcm {

// values[b] as a float32 tensor shaped [B, 1, ..., 1] (as many dims as `like`) on like's device.
inline torch::Tensor PerSample(const std::vector<float>& values, const torch::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = static_cast<int64_t>(values.size());
  return torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat32))
      .view(shape)
      .to(like.device());
}

}  // namespace tlcm
