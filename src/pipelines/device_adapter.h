// Style adapters resident on a device and the per-call LoraBatch built from them.
//
// A DeviceAdapter is a LoRA file matched to the layers of one denoiser and copied to its device
// and dtype, unfused: the model's weights never change. Each sample of a batch carries its own
// AdapterSet (adapters with a weight each, as diffusers' set_adapters takes them);
// LoraBatchBuilder turns the sets of a batch's rows into one LoraBatch
// (models/layers/lora_batch.h), so that samples with different adapters share a denoiser call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/layers/lora_batch.h"

namespace tlcm {

class DeviceAdapter {
 public:
  // One changed layer: B is stored pre-multiplied by the module's own scale (alpha / r, see
  // ModuleScale in loaders/lora.h), so an adapter weight w adds w * (B' A) to the layer.
  struct Layer {
    const torch::nn::Module* layer = nullptr;
    torch::Tensor a;  // [r, in] or [r, in, k, k]
    torch::Tensor b;  // [out, r] or [out, r, 1, 1], scaled
  };

  // Reads the adapter at `path` (any layout of loaders/lora_keys.h), matches it to `model`'s
  // layers and copies it to `device` / `dtype`. Errors name the file and the module at fault.
  // Reads `model`'s structure only: safe while another thread runs the model.
  static absl::StatusOr<std::shared_ptr<const DeviceAdapter>> Load(const std::string& name,
                                                                   const std::string& path,
                                                                   torch::nn::Module& model,
                                                                   const torch::Device& device,
                                                                   torch::Dtype dtype);

  const std::string& name() const { return name_; }
  const std::vector<Layer>& layers() const { return layers_; }
  int64_t bytes() const { return bytes_; }  // device memory of the A and B tensors

 private:
  std::string name_;
  std::vector<Layer> layers_;
  int64_t bytes_ = 0;
};

// One sample's adapters: the weight multiplies the adapter's update (diffusers' set_adapters).
struct AdapterWeight {
  std::shared_ptr<const DeviceAdapter> adapter;
  float weight = 1.0f;
};
using AdapterSet = std::vector<AdapterWeight>;

// Builds the LoraBatch of a denoiser call. Remembers the stacked A / B matrices of the last
// union of adapters, so the steps of a batch whose adapters do not change stack them once. Not
// thread-safe: one per pipeline, used by its run.
class LoraBatchBuilder {
 public:
  // `rows[r]` is the set of batch row r (null or empty: no adapter). The result has no update
  // when no row has an adapter. Row scales go to `device`.
  LoraBatch Build(const std::vector<const AdapterSet*>& rows, const torch::Device& device,
                  torch::Dtype dtype);

 private:
  struct Stacked {
    torch::Tensor a, b;
    std::vector<int> adapters;   // indices into the union whose ranks are stacked, in order
    std::vector<int64_t> ranks;  // the rank of each, in the same order
  };
  std::vector<std::shared_ptr<const DeviceAdapter>> union_;  // of the last Build
  std::unordered_map<const torch::nn::Module*, Stacked> stacked_;
};

}  // namespace tlcm
