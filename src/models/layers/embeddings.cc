#include "models/layers/embeddings.h"

#include <cmath>

namespace tlcm {

torch::Tensor SinusoidalTimestepEmbedding(const torch::Tensor& timesteps, int64_t dim,
                                          bool flip_sin_to_cos, double freq_shift, double scale,
                                          double max_period) {
  const int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(timesteps.device());
  torch::Tensor exponent = -std::log(max_period) * torch::arange(0, half, opts) /
                           (static_cast<double>(half) - freq_shift);
  torch::Tensor arg =
      timesteps.to(torch::kFloat32).unsqueeze(1) * torch::exp(exponent).unsqueeze(0);
  arg = arg * scale;
  torch::Tensor emb = flip_sin_to_cos ? torch::cat({torch::cos(arg), torch::sin(arg)}, -1)
                                      : torch::cat({torch::sin(arg), torch::cos(arg)}, -1);
  if (dim % 2 == 1)
    emb = torch::nn::functional::pad(emb, torch::nn::functional::PadFuncOptions({0, 1}));
  return emb;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_features, int64_t hidden_features,
                                             int64_t out_features) {
  linear_1_ = register_module("linear_1", LoadedLinear(in_features, hidden_features));
  linear_2_ = register_module("linear_2", LoadedLinear(hidden_features, out_features));
}

torch::Tensor TimestepEmbeddingImpl::forward(const torch::Tensor& x) {
  return linear_2_(torch::silu(linear_1_(x)));
}

}  // namespace tlcm
