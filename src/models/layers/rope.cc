#include "models/layers/rope.h"

namespace tlcm {

RopeTables MultiAxisRopeTables(const torch::Tensor& ids, const std::vector<int64_t>& axes_dims,
                               double theta) {
  TORCH_CHECK(ids.dim() == 2 && ids.size(1) == static_cast<int64_t>(axes_dims.size()),
              "RoPE ids must be [S, ", axes_dims.size(), "], got ", ids.sizes());
  // Positions pass through float32 (as diffusers' ids.float()) before the float64 products.
  torch::Tensor pos = ids.to(torch::kFloat32).to(torch::kFloat64);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(ids.device());
  std::vector<torch::Tensor> cos_parts, sin_parts;
  for (size_t i = 0; i < axes_dims.size(); ++i) {
    const int64_t d = axes_dims[i];
    TORCH_CHECK(d % 2 == 0, "RoPE axis ", i, " has odd dimension ", d);
    torch::Tensor freqs = 1.0 / torch::pow(theta, torch::arange(0, d, 2, f64) / static_cast<double>(d));
    torch::Tensor angles = torch::outer(pos.select(1, static_cast<int64_t>(i)), freqs);  // [S, d/2]
    cos_parts.push_back(angles.cos().repeat_interleave(2, /*dim=*/1).to(torch::kFloat32));
    sin_parts.push_back(angles.sin().repeat_interleave(2, /*dim=*/1).to(torch::kFloat32));
  }
  return {torch::cat(cos_parts, -1), torch::cat(sin_parts, -1)};
}

torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTables& rope) {
  // x: [B, H, S, D]; pairs: [B, H, S, D/2, 2]
  std::vector<int64_t> pair_shape(x.sizes().begin(), x.sizes().end() - 1);
  pair_shape.push_back(-1);
  pair_shape.push_back(2);
  torch::Tensor pairs = x.reshape(pair_shape);
  torch::Tensor even = pairs.select(-1, 0), odd = pairs.select(-1, 1);
  torch::Tensor rotated = torch::stack({-odd, even}, -1).flatten(-2);  // [B, H, S, D]
  torch::Tensor cos = rope.cos.unsqueeze(0).unsqueeze(0);               // [1, 1, S, D]
  torch::Tensor sin = rope.sin.unsqueeze(0).unsqueeze(0);
  return (x.to(torch::kFloat32) * cos + rotated.to(torch::kFloat32) * sin).to(x.scalar_type());
}

}  // namespace tlcm
