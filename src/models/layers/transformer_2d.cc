#include "models/layers/transformer_2d.h"

namespace tlcm {

GegluImpl::GegluImpl(int64_t dim, int64_t inner_dim) {
  proj_ = register_module("proj", LoadedLinear(dim, 2 * inner_dim));
}

torch::Tensor GegluImpl::forward(const torch::Tensor& x) {
  auto parts = proj_(x).chunk(2, -1);  // value, gate: [..., inner]
  return parts[0] * torch::gelu(parts[1]);
}

GegluFeedForwardImpl::GegluFeedForwardImpl(int64_t dim, int64_t inner_dim) {
  geglu_ = Geglu(dim, inner_dim);
  out_ = LoadedLinear(inner_dim, dim);
  torch::nn::ModuleList net;
  net->push_back(geglu_);
  net->push_back(torch::nn::Identity());  // diffusers' dropout slot
  net->push_back(out_);
  register_module("net", net);
}

torch::Tensor GegluFeedForwardImpl::forward(const torch::Tensor& x) { return out_(geglu_(x)); }

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim,
                                                     int64_t cross_attention_dim) {
  auto layer_norm = [dim] {
    return torch::nn::LayerNorm(
        torch::nn::LayerNormOptions({dim}).eps(1e-5).elementwise_affine(true));
  };
  AttentionOptions self_attention;
  self_attention.query_dim = dim;
  self_attention.heads = heads;
  self_attention.dim_head = head_dim;
  AttentionOptions cross_attention = self_attention;
  cross_attention.cross_attention_dim = cross_attention_dim;

  norm1_ = register_module("norm1", layer_norm());
  attn1_ = register_module("attn1", Attention(self_attention));
  norm2_ = register_module("norm2", layer_norm());
  attn2_ = register_module("attn2", Attention(cross_attention));
  norm3_ = register_module("norm3", layer_norm());
  ff_ = register_module("ff", GegluFeedForward(dim, 4 * dim));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x,
                                                 const torch::Tensor& context) {
  // x: [B, L, dim]
  torch::Tensor h = attn1_(norm1_(x)) + x;
  h = attn2_(norm2_(h), context) + h;
  return ff_(norm3_(h)) + h;
}

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DOptions& o) {
  const int64_t inner = o.heads * o.head_dim;
  norm_ = register_module(
      "norm",
      torch::nn::GroupNorm(
          torch::nn::GroupNormOptions(o.norm_num_groups, o.in_channels).eps(1e-6).affine(true)));
  if (o.use_linear_projection) {
    proj_in_linear_ = register_module("proj_in", LoadedLinear(o.in_channels, inner));
  } else {
    proj_in_conv_ = register_module("proj_in", LoadedConv2d(o.in_channels, inner, 1));
  }
  transformer_blocks_ = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    transformer_blocks_->push_back(
        BasicTransformerBlock(inner, o.heads, o.head_dim, o.cross_attention_dim));
  }
  if (o.use_linear_projection) {
    proj_out_linear_ = register_module("proj_out", LoadedLinear(inner, o.in_channels));
  } else {
    proj_out_conv_ = register_module("proj_out", LoadedConv2d(inner, o.in_channels, 1));
  }
}

torch::Tensor Transformer2DModelImpl::forward(const torch::Tensor& x,
                                              const torch::Tensor& context) {
  // x: [B, C, H, W]
  const int64_t b = x.size(0), height = x.size(2), width = x.size(3);
  torch::Tensor h = norm_(x);
  if (proj_in_conv_) h = proj_in_conv_(h);  // [B, inner, H, W]
  const int64_t channels = h.size(1);
  h = h.permute({0, 2, 3, 1}).reshape({b, height * width, channels});  // [B, HW, C]
  if (proj_in_linear_) h = proj_in_linear_(h);
  for (const auto& block : *transformer_blocks_) {
    h = block->as<BasicTransformerBlockImpl>()->forward(h, context);
  }
  if (proj_out_linear_) h = proj_out_linear_(h);  // [B, HW, C]
  // [B, C, H, W] in x's layout: a free view when x is channels-last, a copy otherwise.
  h = h.reshape({b, height, width, h.size(-1)})
          .permute({0, 3, 1, 2})
          .contiguous(x.suggest_memory_format());
  if (proj_out_conv_) h = proj_out_conv_(h);
  return h + x;
}

}  // namespace tlcm
