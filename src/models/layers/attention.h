// diffusers' `Attention` as the SDXL UNet and the AutoencoderKL use it: multi-head self- or
// cross-attention with to_q / to_k / to_v / to_out.0 projections, optionally preceded by a
// GroupNorm over channels and followed by a residual connection (the VAE mid-block form).
#pragma once

#include <cstdint>
#include <optional>

#include <torch/torch.h>

#include "models/layers/loaded_layers.h"

namespace tlcm {

struct AttentionOptions {
  int64_t query_dim = 0;  // channels of the attending tokens
  // Feature size of the context tokens (cross-attention); std::nullopt = self-attention.
  std::optional<int64_t> cross_attention_dim;
  int64_t heads = 1;
  int64_t dim_head = 64;  // heads * dim_head is the inner width
  bool bias = false;      // bias of to_q / to_k / to_v
  bool out_bias = true;   // bias of to_out.0
  // When set, `group_norm` (GroupNorm over query_dim channels, affine) normalizes the input
  // before the projections.
  std::optional<int64_t> norm_num_groups;
  double norm_eps = 1e-5;
  bool residual_connection = false;    // output += input
  double rescale_output_factor = 1.0;  // output /= this (after the residual)
};

// Checkpoint keys: to_q.weight, to_k.weight, to_v.weight (+ .bias when `bias`),
// to_out.0.{weight,bias}, group_norm.{weight,bias} (when norm_num_groups is set).
// The attention scale is dim_head^-0.5; the softmax follows ScaledDotProductAttention (fp32
// under half precision on the hand-written path, the fused kernel's own rules on LibTorch 2.1+),
// as diffusers' AttnProcessor2_0 does.
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& options);

  // x: [B, L, query_dim], or [B, query_dim, H, W] (attends over the H*W positions and returns
  // the same 4-D shape). context: [B, Lk, cross_attention_dim]; std::nullopt attends to x itself
  // (after group_norm). Returns x's shape.
  torch::Tensor forward(const torch::Tensor& x,
                        const std::optional<torch::Tensor>& context = std::nullopt);

  const AttentionOptions& options() const { return options_; }

 private:
  AttentionOptions options_;
  torch::nn::GroupNorm group_norm_{nullptr};
  LoadedLinear to_q_{nullptr};
  LoadedLinear to_k_{nullptr};
  LoadedLinear to_v_{nullptr};
  LoadedLinear to_out_0_{nullptr};  // registered as to_out.0
};
TORCH_MODULE(Attention);

}  // namespace tlcm
