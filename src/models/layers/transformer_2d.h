// diffusers' Transformer2DModel over continuous inputs (the UNet's spatial transformer) and its
// BasicTransformerBlock with a GEGLU feed-forward.
#pragma once

#include <cstdint>
#include <optional>

#include <torch/torch.h>

#include "models/layers/attention.h"
#include "models/layers/loaded_layers.h"

namespace tlcm {

// GEGLU: h, gate = proj(x).chunk(2, -1); h * gelu_erf(gate). Checkpoint keys: proj.{weight,bias}.
class GegluImpl : public torch::nn::Module {
 public:
  GegluImpl(int64_t dim, int64_t inner_dim);
  // x: [..., dim] -> [..., inner_dim]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  LoadedLinear proj_{nullptr};
};
TORCH_MODULE(Geglu);

// diffusers FeedForward with activation "geglu": net.0 = GEGLU(dim -> inner), net.1 = dropout
// (no weights; an Identity keeps the index), net.2 = Linear(inner -> dim).
// Checkpoint keys: net.0.proj.{weight,bias}, net.2.{weight,bias}.
class GegluFeedForwardImpl : public torch::nn::Module {
 public:
  GegluFeedForwardImpl(int64_t dim, int64_t inner_dim);
  // x: [..., dim] -> [..., dim]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  Geglu geglu_{nullptr};
  LoadedLinear out_{nullptr};
};
TORCH_MODULE(GegluFeedForward);

// Pre-LayerNorm block (LayerNorm eps 1e-5, affine):
//   x += attn1(norm1(x)); x += attn2(norm2(x), context); x += ff(norm3(x)).
// attn1/attn2: to_q/k/v without bias, to_out.0 with bias; ff inner width 4 * dim.
class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim,
                            int64_t cross_attention_dim);
  // x: [B, L, dim]; context: [B, Lk, cross_attention_dim]. Returns [B, L, dim].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

 private:
  torch::nn::LayerNorm norm1_{nullptr};
  Attention attn1_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  Attention attn2_{nullptr};
  torch::nn::LayerNorm norm3_{nullptr};
  GegluFeedForward ff_{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DOptions {
  int64_t heads = 1;
  int64_t head_dim = 64;  // heads * head_dim = inner width (equals in_channels in the UNet)
  int64_t in_channels = 0;
  int64_t num_layers = 1;
  int64_t cross_attention_dim = 0;
  int64_t norm_num_groups = 32;
  // true: proj_in / proj_out are Linear over tokens (SDXL); false: 1x1 convolutions.
  bool use_linear_projection = true;
};

// GroupNorm(norm_num_groups, eps 1e-6) -> tokens [B, H*W, C] -> proj_in -> transformer_blocks ->
// proj_out -> back to [B, C, H, W] -> + input.
// Checkpoint keys: norm, proj_in, transformer_blocks.{i}.*, proj_out.
class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const Transformer2DOptions& options);
  // x: [B, C, H, W]; context: [B, Lk, cross_attention_dim]. Returns [B, C, H, W].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

 private:
  torch::nn::GroupNorm norm_{nullptr};
  LoadedLinear proj_in_linear_{nullptr};  // one of the two proj_in forms is registered
  LoadedConv2d proj_in_conv_{nullptr};
  torch::nn::ModuleList transformer_blocks_{nullptr};
  LoadedLinear proj_out_linear_{nullptr};
  LoadedConv2d proj_out_conv_{nullptr};
};
TORCH_MODULE(Transformer2DModel);

}  // namespace tlcm
