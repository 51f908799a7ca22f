// Attention kernels shared by every model: LibTorch's fused scaled_dot_product_attention (flash /
// memory-efficient kernels on CUDA, a fused flash kernel on the CPU).
#pragma once

#include <optional>

#include <torch/torch.h>

namespace tlcm {

// softmax(q k^T * scale + bias) v over the last two dims.
// q: [B, H, Lq, D], k and v: [B, H, Lk, D]; `bias` (optional) broadcasts to [B, H, Lq, Lk] and is
// added before the softmax (a causal mask is a bias of -inf above the diagonal). `scale`
// defaults to D^-0.5. The softmax runs in float32 when inputs are half precision.
torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v,
                                        const std::optional<torch::Tensor>& bias = std::nullopt,
                                        std::optional<double> scale = std::nullopt);

// An additive causal mask [L, L]: 0 on and below the diagonal, -inf above, in `dtype`.
torch::Tensor CausalMask(int64_t length, torch::Dtype dtype, torch::Device device);

// [B, L, H*D] -> [B, H, L, D].
torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads);
// [B, H, L, D] -> [B, L, H*D].
torch::Tensor MergeHeads(const torch::Tensor& x);

}  // namespace tlcm
