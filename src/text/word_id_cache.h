// A bounded, thread-safe cache from a word (bytes) to its token ids, for tokenizers whose per-word
// work (BPE) is the hot path. Sharded by hash, one mutex per shard; a shard that reaches its
// capacity is emptied before the next insert (prompts repeat a small working set of words).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace tlcm {

class WordIdCache {
 public:
  // Holds at most about `capacity` words in all.
  explicit WordIdCache(size_t capacity);

  std::optional<std::vector<int64_t>> Lookup(std::string_view word) const;
  void Insert(std::string_view word, const std::vector<int64_t>& ids);

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, std::vector<int64_t>> map;
  };
  Shard& ShardFor(std::string_view word) const;

  size_t shard_capacity_;
  std::unique_ptr<std::array<Shard, kShards>> shards_;
};

}  // namespace tlcm
