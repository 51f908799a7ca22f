// The images still running in a batch: a batch shrinks when a caller drops an image (cancelled,
// deadline passed) at a step boundary, and the others go on.
#pragma once

#include <functional>
#include <numeric>
#include <optional>
#include <vector>

#include <torch/torch.h>

namespace tlcm {

class ActiveSet {
 public:
  explicit ActiveSet(size_t n) : images_(n) { std::iota(images_.begin(), images_.end(), 0); }

  // Run-level indices of the images still in the batch; row r of the batch tensors is image
  // images()[r].
  const std::vector<size_t>& images() const { return images_; }
  bool empty() const { return images_.empty(); }

  // Whether `should_drop` says every running image may go (then nothing of the batch is wanted
  // any more); false without a callback.
  bool AllDropped(const std::function<bool(size_t)>& should_drop) const {
    if (!should_drop) return false;
    for (size_t image : images_) {
      if (!should_drop(image)) return false;
    }
    return true;
  }

  // Asks `should_drop` about every running image. When some leave, returns the rows to keep
  // (an int64 index tensor on `device`) for index_select on every batch tensor; nullopt when
  // nothing changed.
  std::optional<torch::Tensor> Prune(const std::function<bool(size_t)>& should_drop,
                                     const torch::Device& device) {
    if (!should_drop) return std::nullopt;
    std::vector<int64_t> rows;
    std::vector<size_t> kept;
    for (size_t r = 0; r < images_.size(); ++r) {
      if (!should_drop(images_[r])) {
        rows.push_back(static_cast<int64_t>(r));
        kept.push_back(images_[r]);
      }
    }
    if (kept.size() == images_.size()) return std::nullopt;
    images_ = std::move(kept);
    return torch::tensor(rows, torch::kInt64).to(device);
  }

 private:
  std::vector<size_t> images_;
};

}  // namespace tlcm
