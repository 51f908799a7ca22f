#include "models/layers/attention.h"

#include "models/layers/attention_ops.h"

namespace tlcm {

AttentionImpl::AttentionImpl(const AttentionOptions& options) : options_(options) {
  const int64_t inner = options.heads * options.dim_head;
  const int64_t context_dim = options.cross_attention_dim.value_or(options.query_dim);
  if (options.norm_num_groups) {
    auto norm = torch::nn::GroupNormOptions(*options.norm_num_groups, options.query_dim)
                    .eps(options.norm_eps)
                    .affine(true);
    group_norm_ = register_module("group_norm", torch::nn::GroupNorm(norm));
  }
  auto projection = [&](int64_t in) { return LoadedLinear(in, inner, options.bias); };
  to_q_ = register_module("to_q", projection(options.query_dim));
  to_k_ = register_module("to_k", projection(context_dim));
  to_v_ = register_module("to_v", projection(context_dim));
  // diffusers' to_out is [Linear, Dropout]; only the Linear ("0") carries weights.
  to_out_0_ = LoadedLinear(inner, options.query_dim, options.out_bias);
  torch::nn::ModuleList to_out;
  to_out->push_back(to_out_0_);
  register_module("to_out", to_out);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x,
                                     const std::optional<torch::Tensor>& context) {
  const bool spatial = x.dim() == 4;
  torch::Tensor h = x;
  if (spatial) {
    // x: [B, C, H, W] -> [B, H*W, C]
    h = x.flatten(2).transpose(1, 2);
  }
  if (group_norm_) {
    // GroupNorm runs over channels: [B, L, C] -> [B, C, L] and back.
    h = group_norm_(h.transpose(1, 2)).transpose(1, 2);
  }
  const torch::Tensor& kv = context ? *context : h;
  // q: [B, heads, L, dim_head]; k, v: [B, heads, Lk, dim_head]
  torch::Tensor q = SplitHeads(to_q_(h), options_.heads);
  torch::Tensor k = SplitHeads(to_k_(kv), options_.heads);
  torch::Tensor v = SplitHeads(to_v_(kv), options_.heads);
  torch::Tensor out = to_out_0_(MergeHeads(ScaledDotProductAttention(q, k, v)));  // [B, L, C]
  if (spatial) {
    out = out.transpose(1, 2).reshape(x.sizes());  // [B, C, H, W]
  }
  if (options_.residual_connection) out = out + x;
  if (options_.rescale_output_factor != 1.0) out = out / options_.rescale_output_factor;
  return out;
}

}  // namespace tlcm
