// Per-sample LoRA updates for one denoiser call, applied unfused by the Linear and Conv2d layers.
//
// A pipeline that runs samples with different adapter sets in one batch installs a LoraBatch for
// the length of one denoiser call (ScopedLoraBatch); every LoadedLinear / LoadedConv2d
// (models/layers/loaded_layers.h) asks CurrentLoraUpdate(this) and, when the batch holds an
// update for it, adds the low-rank term to its output:
//   Linear:  y += ((x A^T) * S[row]) B^T             x: [rows, ..., in]
//   Conv2d:  y += conv1x1(conv_kxk(x, A) * S[row], B)  x: [rows, in, H, W]
// A [R, in(, k, k)] and B [out, R(, 1, 1)] stack the ranks of every adapter of the batch that
// targets the layer; S [rows, R] holds, per batch row, each adapter's weight times its own
// scaling (alpha / r) on that adapter's R columns and 0 where the row does not use it. So one
// denoiser call serves samples with different adapter sets: the product is gathered per sample
// by the row scales, never by splitting the batch.
// Thread-local like models/layers/interruption.h: each worker thread has its own batch; without
// one, CurrentLoraUpdate returns nullptr and the layers cost nothing extra.
#pragma once

#include <unordered_map>

#include <torch/torch.h>

namespace tlcm {

// The low-rank term of one layer. Tensors on the layer's device, in its dtype.
struct LowRankUpdate {
  torch::Tensor a;           // Linear [R, in]; Conv2d [R, in, k, k] (the layer's kernel)
  torch::Tensor b;           // Linear [out, R]; Conv2d [out, R, 1, 1]
  torch::Tensor row_scales;  // [rows, R]
};

// The updates of one denoiser call, by layer. The layers are identified by address, so a
// LoraBatch is only valid for the model whose layers it was built from.
struct LoraBatch {
  std::unordered_map<const torch::nn::Module*, LowRankUpdate> updates;
};

// Installs `batch` (may be null: no update) on this thread until destroyed; the previous one
// comes back. `batch` must outlive the scope.
class ScopedLoraBatch {
 public:
  explicit ScopedLoraBatch(const LoraBatch* batch);
  ~ScopedLoraBatch();
  ScopedLoraBatch(const ScopedLoraBatch&) = delete;
  ScopedLoraBatch& operator=(const ScopedLoraBatch&) = delete;

 private:
  const LoraBatch* previous_;
};

// This thread's update for `layer`, or nullptr.
const LowRankUpdate* CurrentLoraUpdate(const torch::nn::Module* layer);

// Adds the Linear low-rank term of `update` for input `x` to columns [column, column + out) of
// `y` [rows, ..., columns] (in place; out = update.b.size(0)) and returns y. `column` > 0 serves
// a layer fused with others into one product (models/layers/fused_linear.h). TORCH_CHECKs that x
// has as many rows as the update's row scales.
torch::Tensor AddLinearLoraUpdate(const LowRankUpdate& update, const torch::Tensor& x,
                                  torch::Tensor y, int64_t column = 0);
// The Conv2d term for input `x` with the base layer's stride and padding, added to `y`.
torch::Tensor AddConv2dLoraUpdate(const LowRankUpdate& update, const torch::Tensor& x,
                                  torch::Tensor y, int64_t stride, int64_t padding);

}  // namespace tlcm
