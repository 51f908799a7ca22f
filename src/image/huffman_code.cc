#include "image/huffman_code.h"

#include <algorithm>

namespace tlcm {
namespace {

constexpr int kMaxBits = 15;

// Depth of every leaf in a Huffman tree over `weights` (ascending). Merges with two queues: the
// leaves in order, and the merged nodes, which come out in ascending order by construction.
std::vector<int> LeafDepths(const std::vector<uint64_t>& weights) {
  const size_t leaves = weights.size();
  std::vector<uint64_t> weight(weights);
  weight.resize(2 * leaves - 1);
  std::vector<size_t> parent(2 * leaves - 1, 0);
  size_t next_leaf = 0, next_merged = leaves;
  auto take_smallest = [&](size_t merged_end) {
    const bool leaf = next_leaf < leaves &&
                      (next_merged == merged_end || weight[next_leaf] <= weight[next_merged]);
    if (leaf) return next_leaf++;
    return next_merged++;
  };
  for (size_t node = leaves; node < 2 * leaves - 1; ++node) {
    const size_t a = take_smallest(node), b = take_smallest(node);
    weight[node] = weight[a] + weight[b];
    parent[a] = parent[b] = node;
  }
  // Parents have larger indices than their children: one pass from the root down.
  std::vector<int> depth(2 * leaves - 1, 0);
  for (size_t node = 2 * leaves - 1; node-- > 0;) {
    if (node != 2 * leaves - 2) depth[node] = depth[parent[node]] + 1;
  }
  depth.resize(leaves);
  return depth;
}

}  // namespace

std::vector<uint8_t> HuffmanCodeLengths(const std::vector<uint32_t>& counts, int max_length) {
  std::vector<uint8_t> lengths(counts.size(), 0);
  std::vector<int> used;
  for (size_t s = 0; s < counts.size(); ++s) {
    if (counts[s] > 0) used.push_back(static_cast<int>(s));
  }
  if (used.size() < 2) {  // one code of length 1 alone is not complete: give it a partner
    const int first = used.empty() ? 0 : used[0];
    lengths[first] = lengths[first == 0 ? 1 : 0] = 1;
    return lengths;
  }
  // Least frequent first (ties by symbol, so that the result does not depend on the sort).
  std::sort(used.begin(), used.end(),
            [&](int a, int b) { return counts[a] != counts[b] ? counts[a] < counts[b] : a < b; });
  std::vector<uint64_t> weights(used.size());
  for (size_t i = 0; i < used.size(); ++i) weights[i] = counts[used[i]];
  const std::vector<int> depths = LeafDepths(weights);

  // How many codes of each length. Codes deeper than max_length are first cut to max_length,
  // which overfills the code space (Kraft sum > 1). Each round below then moves one code away
  // from max_length, freeing one unit of 2^-max_length, by splitting the longest shorter code
  // into two codes one bit longer (same space as before the split): the number of codes stays
  // the same and the overfill shrinks by one unit, until the code is exactly complete.
  std::vector<uint32_t> per_length(kMaxBits + 1, 0);
  for (int d : depths) ++per_length[std::min(d, max_length)];
  uint64_t space = 0;  // the Kraft sum in units of 2^-max_length
  for (int len = 1; len <= max_length; ++len) {
    space += uint64_t{per_length[len]} << (max_length - len);
  }
  for (; space > (uint64_t{1} << max_length); --space) {
    --per_length[max_length];
    int len = max_length - 1;
    while (per_length[len] == 0) --len;
    --per_length[len];
    per_length[len + 1] += 2;
  }
  // Shortest codes to the most frequent symbols (the end of `used`).
  auto symbol = used.rbegin();
  for (int len = 1; len <= max_length; ++len) {
    for (uint32_t i = 0; i < per_length[len]; ++i) lengths[*symbol++] = static_cast<uint8_t>(len);
  }
  return lengths;
}

std::vector<uint16_t> CanonicalCodes(const std::vector<uint8_t>& lengths) {
  uint16_t per_length[kMaxBits + 1] = {};
  for (uint8_t len : lengths) ++per_length[len];
  per_length[0] = 0;
  uint16_t next[kMaxBits + 2] = {};
  for (int len = 1; len <= kMaxBits; ++len) {
    next[len + 1] = static_cast<uint16_t>((next[len] + per_length[len]) << 1);
  }
  std::vector<uint16_t> codes(lengths.size(), 0);
  for (size_t s = 0; s < lengths.size(); ++s) {
    const int len = lengths[s];
    if (len == 0) continue;
    uint16_t code = next[len]++, reversed = 0;
    for (int bit = 0; bit < len; ++bit, code >>= 1) {
      reversed = static_cast<uint16_t>((reversed << 1) | (code & 1));
    }
    codes[s] = reversed;
  }
  return codes;
}

}  // namespace tlcm
