// Timestep embeddings shared by the UNet and the FLUX transformer.
#pragma once

#include <torch/torch.h>

#include "models/layers/loaded_layers.h"

namespace tlcm {

// Sinusoidal embedding of `timesteps` ([N], any numeric dtype) -> [N, dim] float32:
//   half = dim / 2; exponent_j = -ln(max_period) * j / (half - freq_shift), j in [0, half)
//   arg = t * scale * exp(exponent); emb = [sin(arg), cos(arg)], or [cos, sin] when
//   flip_sin_to_cos; an odd `dim` gets one zero column at the end.
// Always computed in float32; callers cast to the model dtype.
torch::Tensor SinusoidalTimestepEmbedding(const torch::Tensor& timesteps, int64_t dim,
                                          bool flip_sin_to_cos, double freq_shift,
                                          double scale = 1.0, double max_period = 10000.0);

// diffusers TimestepEmbedding / PixArtAlphaTextProjection: linear_1 -> SiLU -> linear_2.
// Checkpoint keys: linear_1.{weight,bias}, linear_2.{weight,bias}.
class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t in_features, int64_t hidden_features, int64_t out_features);
  // x: [B, in] -> [B, out]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  LoadedLinear linear_1_{nullptr};
  LoadedLinear linear_2_{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace tlcm
