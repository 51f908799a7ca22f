// Byte-level BPE (GPT-2 / CLIP style): a word's UTF-8 bytes become printable stand-in characters
// (ByteToUnicode), then adjacent symbols are merged by merge rank.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace tlcm {

// The GPT-2 byte-to-unicode table: printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC,
// U+00AE..U+00FF) map to themselves, the other 68 bytes to U+0100.. in byte order.
char32_t ByteToUnicode(uint8_t byte);

// Merge ranks over interned symbols. Immutable after construction, so Apply is thread-safe.
class ByteLevelBpe {
 public:
  // `merges` in rank order (rank = index; a repeated pair keeps its last rank, as a Python dict
  // built from the list does). `end_of_word` is appended to a word's last symbol ("</w>" for CLIP).
  ByteLevelBpe(const std::vector<std::pair<std::string, std::string>>& merges,
               std::string end_of_word);

  // BPE of one word given as raw bytes (non-empty): starts from one symbol per byte, the last one
  // carrying the end-of-word suffix, then repeatedly merges every non-overlapping occurrence (left
  // to right) of the adjacent pair with the lowest rank, until no adjacent pair has a rank.
  // Returns symbol ids (see symbol()). O(n log n) in the word length.
  std::vector<int32_t> Apply(std::string_view word) const;

  // Symbol strings (UTF-8 of the stand-in characters, "</w>" included where it belongs).
  const std::string& symbol(int32_t id) const { return symbols_[id]; }
  int32_t symbol_count() const { return static_cast<int32_t>(symbols_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // symbol id of the merged pair
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  int32_t Intern(const std::string& symbol);
  const Merge* FindMerge(int32_t left, int32_t right) const;

  std::vector<std::string> symbols_;
  absl::flat_hash_map<std::string, int32_t> symbol_ids_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  int32_t byte_symbol_[256];      // stand-in character of each byte
  int32_t byte_symbol_eow_[256];  // the same with the end-of-word suffix
};

}  // namespace tlcm
