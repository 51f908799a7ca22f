#include "text/byte_level_bpe.h"

#include <algorithm>
#include <functional>
#include <queue>

#include "text/utf8.h"

namespace tlcm {

char32_t ByteToUnicode(uint8_t byte) {
  static const auto table = [] {
    std::vector<char32_t> t(256, 0);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) t[b] = printable(b) ? static_cast<char32_t>(b) : next++;
    return t;
  }();
  return table[byte];
}

ByteLevelBpe::ByteLevelBpe(const std::vector<std::pair<std::string, std::string>>& merges,
                           std::string end_of_word) {
  for (int b = 0; b < 256; ++b) {
    std::string s;
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), s);
    byte_symbol_[b] = Intern(s);
    byte_symbol_eow_[b] = Intern(s + end_of_word);
  }
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const int32_t l = Intern(left);
    const int32_t r = Intern(right);
    const int32_t result = Intern(left + right);
    merges_[PairKey(l, r)] = Merge{static_cast<int32_t>(rank), result};
  }
}

int32_t ByteLevelBpe::Intern(const std::string& symbol) {
  auto [it, inserted] = symbol_ids_.emplace(symbol, static_cast<int32_t>(symbols_.size()));
  if (inserted) symbols_.push_back(symbol);
  return it->second;
}

const ByteLevelBpe::Merge* ByteLevelBpe::FindMerge(int32_t left, int32_t right) const {
  auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

std::vector<int32_t> ByteLevelBpe::Apply(std::string_view word) const {
  const size_t n = word.size();
  if (n == 0) return {};
  // Symbols live in a doubly linked list over the byte positions; a merge keeps the left node.
  std::vector<int32_t> sym(n), prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    const auto byte = static_cast<uint8_t>(word[i]);
    sym[i] = i + 1 == n ? byte_symbol_eow_[byte] : byte_symbol_[byte];
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 == n ? -1 : static_cast<int32_t>(i) + 1;
  }
  if (n == 1) return sym;

  // Candidate merges keyed by (rank, left node). Entries go stale when a neighbour changes; they
  // are checked when popped.
  using Entry = std::pair<int32_t, int32_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto push_pair = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    if (const Merge* m = FindMerge(sym[left], sym[next[left]])) heap.emplace(m->rank, left);
  };
  for (size_t i = 0; i + 1 < n; ++i) push_pair(static_cast<int32_t>(i));

  std::vector<bool> alive(n, true);
  std::vector<int32_t> lefts;
  while (!heap.empty()) {
    // One pass of the reference algorithm: every occurrence of the lowest-ranked pair present,
    // merged left to right without overlap. New pairs formed by this pass wait for the next one.
    const int32_t rank = heap.top().first;
    lefts.clear();
    while (!heap.empty() && heap.top().first == rank) {
      lefts.push_back(heap.top().second);
      heap.pop();
    }
    std::sort(lefts.begin(), lefts.end());
    lefts.erase(std::unique(lefts.begin(), lefts.end()), lefts.end());
    for (int32_t left : lefts) {
      if (!alive[left] || next[left] < 0) continue;
      const int32_t right = next[left];
      const Merge* m = FindMerge(sym[left], sym[right]);
      if (m == nullptr || m->rank != rank) continue;  // stale, or overlapped by the previous merge
      sym[left] = m->result;
      alive[right] = false;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      push_pair(prev[left]);
      push_pair(left);
    }
  }
  std::vector<int32_t> out;
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
  return out;
}

}  // namespace tlcm
