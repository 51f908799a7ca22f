#include "pipelines/device_adapter.h"

#include <algorithm>
#include <map>

#include "loaders/lora.h"
#include "util/status_macros.h"

namespace tlcm {

absl::StatusOr<std::shared_ptr<const DeviceAdapter>> DeviceAdapter::Load(
    const std::string& name, const std::string& path, torch::nn::Module& model,
    const torch::Device& device, torch::Dtype dtype) {
  TLCM_ASSIGN_OR_RETURN(LoraAdapter adapter, LoadLoraAdapter(path));
  TLCM_ASSIGN_OR_RETURN(std::vector<LoraTarget> targets, ResolveLoraTargets(model, adapter));
  torch::NoGradGuard no_grad;
  auto resident = std::make_shared<DeviceAdapter>();
  resident->name_ = name;
  for (const LoraTarget& target : targets) {
    const float scale = ModuleScale(adapter, *target.pair);
    Layer layer{target.layer.get(), target.pair->a.to(device, dtype).contiguous(),
                (target.pair->b.to(torch::kFloat32) * scale).to(device, dtype).contiguous()};
    resident->bytes_ += static_cast<int64_t>(layer.a.nbytes() + layer.b.nbytes());
    resident->layers_.push_back(std::move(layer));
  }
  return std::shared_ptr<const DeviceAdapter>(std::move(resident));
}

LoraBatch LoraBatchBuilder::Build(const std::vector<const AdapterSet*>& rows,
                                  const torch::Device& device, torch::Dtype dtype) {
  // The union of the rows' adapters, in order of first use.
  std::vector<std::shared_ptr<const DeviceAdapter>> adapters;
  for (const AdapterSet* set : rows) {
    if (set == nullptr) continue;
    for (const AdapterWeight& entry : *set) {
      if (std::find(adapters.begin(), adapters.end(), entry.adapter) == adapters.end()) {
        adapters.push_back(entry.adapter);
      }
    }
  }
  LoraBatch batch;
  if (adapters.empty()) return batch;
  if (adapters != union_) {
    union_ = adapters;
    stacked_.clear();
    std::map<const torch::nn::Module*, std::vector<std::pair<int, const DeviceAdapter::Layer*>>>
        by_layer;
    for (size_t i = 0; i < adapters.size(); ++i) {
      for (const DeviceAdapter::Layer& layer : adapters[i]->layers()) {
        by_layer[layer.layer].emplace_back(static_cast<int>(i), &layer);
      }
    }
    for (const auto& [module, parts] : by_layer) {
      Stacked stacked;
      std::vector<torch::Tensor> as, bs;
      for (const auto& [index, layer] : parts) {
        stacked.adapters.push_back(index);
        stacked.ranks.push_back(layer->a.size(0));
        as.push_back(layer->a);
        bs.push_back(layer->b);
      }
      stacked.a = as.size() == 1 ? as[0] : torch::cat(as, 0);
      stacked.b = bs.size() == 1 ? bs[0] : torch::cat(bs, 1);
      stacked_[module] = std::move(stacked);
    }
  }
  // Per batch row, the weight of each adapter of the union (0 when the row does not use it).
  const auto n = static_cast<int64_t>(rows.size());
  std::vector<std::vector<float>> weights(rows.size(), std::vector<float>(adapters.size(), 0.0f));
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] == nullptr) continue;
    for (const AdapterWeight& entry : *rows[r]) {
      const auto at = std::find(adapters.begin(), adapters.end(), entry.adapter) - adapters.begin();
      weights[r][at] += entry.weight;
    }
  }
  // Row scales by column layout (which adapters are stacked, with which ranks): layers that the
  // same adapters change share one tensor.
  std::map<std::vector<int64_t>, torch::Tensor> scales_by_layout;
  for (const auto& [module, stacked] : stacked_) {
    std::vector<int64_t> layout;
    for (size_t k = 0; k < stacked.adapters.size(); ++k) {
      layout.push_back(stacked.adapters[k]);
      layout.push_back(stacked.ranks[k]);
    }
    torch::Tensor& scales = scales_by_layout[layout];
    if (!scales.defined()) {
      torch::Tensor cpu = torch::zeros({n, stacked.a.size(0)}, torch::kFloat32);
      auto acc = cpu.accessor<float, 2>();
      int64_t offset = 0;
      for (size_t k = 0; k < stacked.adapters.size(); ++k) {
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < stacked.ranks[k]; ++c) {
            acc[r][offset + c] = weights[r][stacked.adapters[k]];
          }
        }
        offset += stacked.ranks[k];
      }
      scales = cpu.to(device, dtype);
    }
    batch.updates[module] = LowRankUpdate{stacked.a, stacked.b, scales};
  }
  return batch;
}

}  // namespace tlcm
