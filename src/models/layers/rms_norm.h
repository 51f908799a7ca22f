// Weight-only RMS normalization over the last dimension (diffusers' RMSNorm with
// elementwise_affine, as used for the FLUX per-head query/key norms).
#pragma once

#include <torch/torch.h>

namespace tlcm {

// y = (x * rsqrt(mean(x^2) + eps)) * weight, the statistics and the product with rsqrt in
// float32. A float32 weight returns float32. A float16 / bfloat16 weight returns that dtype: x
// is cast to it first and LibTorch's fused rms_norm computes the rest, rounding once at the end
// (diffusers rounds the normalized value to the weight's dtype before the product: at most one
// unit in the last place apart). Checkpoint key: weight [dim].
class RMSNormImpl : public torch::nn::Module {
 public:
  explicit RMSNormImpl(int64_t dim, double eps = 1e-6);
  // x: [..., dim] -> [..., dim]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  double eps_;
  torch::Tensor weight_;
};
TORCH_MODULE(RMSNorm);

}  // namespace tlcm
