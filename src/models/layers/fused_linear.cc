#include "models/layers/fused_linear.h"

#include <utility>

#include "models/layers/lora_batch.h"

namespace tlcm {
namespace {

// Whether `part` is the tensor `whole` holds at `offset` (same storage, same place).
bool Views(const torch::Tensor& part, const torch::Tensor& whole, int64_t offset) {
  return part.defined() && part.is_alias_of(whole) &&
         part.storage_offset() == whole.storage_offset() + offset;
}

}  // namespace

FusedLinear FusedLinear::Fuse(std::vector<LoadedLinear> parts) {
  TORCH_CHECK(!parts.empty(), "FusedLinear needs at least one layer");
  torch::NoGradGuard no_grad;
  FusedLinear fused;
  std::vector<torch::Tensor> weights, biases;
  for (const LoadedLinear& part : parts) {
    TORCH_CHECK(part->bias.defined() == parts[0]->bias.defined(),
                "FusedLinear: either every layer has a bias or none has");
    weights.push_back(part->weight);
    if (part->bias.defined()) biases.push_back(part->bias);
    fused.widths_.push_back(part->weight.size(0));
  }
  fused.weight_ = torch::cat(weights, 0);  // checks in_features, dtype and device
  if (!biases.empty()) fused.bias_ = torch::cat(biases, 0);
  int64_t row = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    parts[i]->weight.set_data(fused.weight_.narrow(0, row, fused.widths_[i]));
    if (fused.bias_.defined()) {
      parts[i]->bias.set_data(fused.bias_.narrow(0, row, fused.widths_[i]));
    }
    row += fused.widths_[i];
  }
  fused.parts_ = std::move(parts);
  return fused;
}

std::vector<torch::Tensor> FusedLinear::forward(const torch::Tensor& x) const {
  TORCH_CHECK(weight_.defined(), "FusedLinear used before Fuse");
  const int64_t in = weight_.size(1);
  int64_t row = 0;
  for (size_t i = 0; i < parts_.size(); ++i) {
    TORCH_CHECK(Views(parts_[i]->weight, weight_, row * in) &&
                    (!bias_.defined() || Views(parts_[i]->bias, bias_, row)),
                "FusedLinear: a layer's weights changed after Fuse (moved or reloaded); fuse "
                "again");
    row += widths_[i];
  }
  torch::Tensor y = torch::linear(x, weight_, bias_);  // [..., sum of widths]
  std::vector<torch::Tensor> out;
  int64_t column = 0;
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (const LowRankUpdate* update = CurrentLoraUpdate(parts_[i].get())) {
      y = AddLinearLoraUpdate(*update, x, std::move(y), column);
    }
    column += widths_[i];
  }
  return y.split_with_sizes(widths_, -1);
}

}  // namespace tlcm
