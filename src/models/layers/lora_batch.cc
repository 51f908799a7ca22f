#include "models/layers/lora_batch.h"

#include <utility>

namespace tlcm {
namespace {

thread_local const LoraBatch* current_batch = nullptr;

void CheckRows(const LowRankUpdate& update, const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 2 && x.size(0) == update.row_scales.size(0), "LoRA batch has ",
              update.row_scales.size(0), " rows but the layer input is ", x.sizes());
}

}  // namespace

ScopedLoraBatch::ScopedLoraBatch(const LoraBatch* batch)
    : previous_(std::exchange(current_batch, batch)) {}

ScopedLoraBatch::~ScopedLoraBatch() { current_batch = previous_; }

const LowRankUpdate* CurrentLoraUpdate(const torch::nn::Module* layer) {
  if (current_batch == nullptr) return nullptr;
  auto it = current_batch->updates.find(layer);
  return it == current_batch->updates.end() ? nullptr : &it->second;
}

torch::Tensor AddLinearLoraUpdate(const LowRankUpdate& update, const torch::Tensor& x,
                                  torch::Tensor y, int64_t column) {
  CheckRows(update, x);
  const int64_t rows = x.size(0), rank = update.a.size(0), out = update.b.size(0);
  TORCH_CHECK(column >= 0 && column + out <= y.size(-1), "LoRA update of ", out,
              " columns at column ", column, " does not fit the layer output ", y.sizes());
  // h: [rows, L, R] with L every middle dimension of x flattened.
  torch::Tensor h = torch::matmul(x.reshape({rows, -1, x.size(-1)}), update.a.t());
  h.mul_(update.row_scales.view({rows, 1, rank}));
  // The layer's columns of y viewed [rows * L, out] += h B^T, the sum fused into the product.
  if (!y.is_contiguous()) y = y.contiguous();
  y.view({-1, y.size(-1)}).narrow(1, column, out).addmm_(h.view({-1, rank}), update.b.t());
  return y;
}

torch::Tensor AddConv2dLoraUpdate(const LowRankUpdate& update, const torch::Tensor& x,
                                  torch::Tensor y, int64_t stride, int64_t padding) {
  CheckRows(update, x);
  torch::Tensor h = torch::conv2d(x, update.a, {}, stride, padding);  // [rows, R, H', W']
  h.mul_(update.row_scales.view({x.size(0), -1, 1, 1}));
  return y.add_(torch::conv2d(h, update.b));
}

}  // namespace tlcm
