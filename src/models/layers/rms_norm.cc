#include "models/layers/rms_norm.h"

namespace tlcm {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // x: [..., dim]
  torch::Tensor variance = x.to(torch::kFloat32).pow(2).mean(-1, /*keepdim=*/true);
  torch::Tensor y = x.to(torch::kFloat32) * torch::rsqrt(variance + eps_);
  const auto wtype = weight_.scalar_type();
  if (wtype == torch::kFloat16 || wtype == torch::kBFloat16) y = y.to(wtype);
  return y * weight_;
}

}  // namespace tlcm
