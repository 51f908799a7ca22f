// Linear layers that read the same input, fused into one matrix product once the weights are
// final (FLUX's q / k / v projections; a single block's q / k / v and MLP input).
//
// FusedLinear::Fuse concatenates the weights (and biases) of its parts along the output features
// into one tensor and points every part's own `weight` / `bias` at its rows of it, so the memory
// is held once and the parts stay what the checkpoint, the LoRA loaders and the adapter cache
// see: modules with their own names and shapes. forward() runs one product for all parts and
// adds each part's per-sample style LoRA update (models/layers/lora_batch.h) to that part's
// columns, exactly what the separate layers would compute.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "models/layers/loaded_layers.h"

namespace tlcm {

class FusedLinear {
 public:
  FusedLinear() = default;  // not fused: forward throws

  // `parts` (at least one) must have the same in_features, the same dtype and device, and all or
  // none a bias. Call it when the weights are final: loaded, the TLCM LoRA fused, moved to their
  // device and dtype. Moving or replacing a part's weights afterwards detaches it from the fused
  // tensor; forward() then throws until Fuse is called again.
  static FusedLinear Fuse(std::vector<LoadedLinear> parts);

  // x: [..., in_features] -> one tensor per part, [..., out_features of the part], in order
  // (views of one [..., sum of out_features] product). Throws c10::Error when not fused or stale.
  std::vector<torch::Tensor> forward(const torch::Tensor& x) const;

 private:
  std::vector<LoadedLinear> parts_;
  std::vector<int64_t> widths_;  // out_features per part
  torch::Tensor weight_;         // [sum of out_features, in_features]
  torch::Tensor bias_;           // [sum of out_features] or undefined
};

}  // namespace tlcm
