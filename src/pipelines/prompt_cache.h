// A least-recently-used cache of prompt embeddings, so repeated prompts skip the text encoders.
#pragma once

#include <functional>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "pipelines/pipeline_options.h"

namespace tlcm {

// Maps a prompt key to the tensors its encoders produced (each [1, ...] on the pipeline's
// device). Holds at most `capacity` entries (0 disables it). Not thread-safe: a pipeline runs one
// batch at a time.
class PromptCache {
 public:
  explicit PromptCache(size_t capacity) : capacity_(capacity) {}

  // The cached tensors for `key`, marking it most recently used; nullptr on a miss.
  const std::vector<torch::Tensor>* Find(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return &it->second->second;
  }

  void Insert(const std::string& key, std::vector<torch::Tensor> tensors) {
    if (capacity_ == 0 || index_.count(key)) return;
    entries_.emplace_front(key, std::move(tensors));
    index_[key] = entries_.begin();
    if (entries_.size() > capacity_) {
      index_.erase(entries_.back().first);
      entries_.pop_back();
    }
  }

  size_t size() const { return entries_.size(); }

 private:
  using Entry = std::pair<std::string, std::vector<torch::Tensor>>;
  size_t capacity_;
  std::list<Entry> entries_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

// The prompt embeddings of requests[images[0]], requests[images[1]], ...: cached ones from
// `cache`, the rest from ONE call of `encode` over the distinct missing (prompt, prompt_2) pairs
// (prompt_2 empty means prompt). `encode` returns tensors shaped [M, ...]; the result holds, per
// tensor, the rows of all those images concatenated: [N, ...]. Counts cache hits and misses per
// image.
using PromptEncoder = std::function<std::vector<torch::Tensor>(
    const std::vector<std::string>& prompts, const std::vector<std::string>& prompts_2)>;
std::vector<torch::Tensor> EncodePromptsCached(PromptCache& cache,
                                               const std::vector<ImageRequest>& requests,
                                               const std::vector<size_t>& images,
                                               const PromptEncoder& encode, int& hits, int& misses);

}  // namespace tlcm
