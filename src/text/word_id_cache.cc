#include "text/word_id_cache.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace tlcm {

WordIdCache::WordIdCache(size_t capacity)
    : shard_capacity_(std::max<size_t>(1, capacity / kShards)),
      shards_(std::make_unique<std::array<Shard, kShards>>()) {}

WordIdCache::Shard& WordIdCache::ShardFor(std::string_view word) const {
  const absl::string_view key(word.data(), word.size());
  return (*shards_)[absl::Hash<absl::string_view>{}(key) % kShards];
}

std::optional<std::vector<int64_t>> WordIdCache::Lookup(std::string_view word) const {
  Shard& shard = ShardFor(word);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(absl::string_view(word.data(), word.size()));
  if (it == shard.map.end()) return std::nullopt;
  return it->second;
}

void WordIdCache::Insert(std::string_view word, const std::vector<int64_t>& ids) {
  Shard& shard = ShardFor(word);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= shard_capacity_) shard.map.clear();
  shard.map.emplace(std::string(word), ids);
}

}  // namespace tlcm
