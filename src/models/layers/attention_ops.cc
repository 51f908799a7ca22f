#include "models/layers/attention_ops.h"

#include <cmath>
#include <limits>

namespace tlcm {

torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v,
                                        const std::optional<torch::Tensor>& bias,
                                        std::optional<double> scale) {
  const double s = scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  std::optional<torch::Tensor> mask;
  if (bias) mask = bias->to(q.scalar_type());
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false, s);
}

torch::Tensor CausalMask(int64_t length, torch::Dtype dtype, torch::Device device) {
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  return torch::full({length, length}, -std::numeric_limits<float>::infinity(), opts).triu(1);
}

torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads) {
  const int64_t b = x.size(0), l = x.size(1), c = x.size(2);
  return x.view({b, l, heads, c / heads}).transpose(1, 2);
}

torch::Tensor MergeHeads(const torch::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(1), l = x.size(2), d = x.size(3);
  return x.transpose(1, 2).reshape({b, l, h * d});
}

}  // namespace tlcm
