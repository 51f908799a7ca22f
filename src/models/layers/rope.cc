#include "models/layers/rope.h"

#include <algorithm>

namespace tlcm {

RopeTables MultiAxisRopeTables(const torch::Tensor& ids, const std::vector<int64_t>& axes_dims,
                               double theta) {
  TORCH_CHECK(ids.dim() == 2 && ids.size(1) == static_cast<int64_t>(axes_dims.size()),
              "RoPE ids must be [S, ", axes_dims.size(), "], got ", ids.sizes());
  // Positions pass through float32 (as diffusers' ids.float()) before the float64 products.
  torch::Tensor pos = ids.to(torch::kFloat32).to(torch::kFloat64);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(ids.device());
  std::vector<torch::Tensor> rotation_parts;
  for (size_t i = 0; i < axes_dims.size(); ++i) {
    const int64_t d = axes_dims[i];
    TORCH_CHECK(d % 2 == 0, "RoPE axis ", i, " has odd dimension ", d);
    torch::Tensor freqs =
        1.0 / torch::pow(theta, torch::arange(0, d, 2, f64) / static_cast<double>(d));
    torch::Tensor angles = torch::outer(pos.select(1, static_cast<int64_t>(i)), freqs);  // [S, d/2]
    rotation_parts.push_back(
        torch::complex(angles.cos().to(torch::kFloat32), angles.sin().to(torch::kFloat32)));
  }
  return {torch::cat(rotation_parts, -1)};
}

torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTables& rope) {
  // x: [B, H, S, D] -> pairs as complex numbers [B, H, S, D/2]
  std::vector<int64_t> pair_shape(x.sizes().begin(), x.sizes().end() - 1);
  pair_shape.push_back(-1);
  pair_shape.push_back(2);
  torch::Tensor real = x.to(torch::kFloat32).reshape(pair_shape);
  // A strided view (heads split off a projection) is read in place when its layout allows it.
  const bool viewable = real.stride(-1) == 1 && real.storage_offset() % 2 == 0 &&
                        std::all_of(real.strides().begin(), real.strides().end() - 1,
                                    [](int64_t stride) { return stride % 2 == 0; });
  const torch::Tensor pairs = torch::view_as_complex(viewable ? real : real.contiguous());
  return torch::view_as_real(pairs * rope.rotation).flatten(-2).to(x.scalar_type());
}

}  // namespace tlcm
