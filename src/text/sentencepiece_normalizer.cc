#include "text/sentencepiece_normalizer.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "text/utf8.h"

namespace tlcm {
namespace {

// U+2581 LOWER ONE EIGHTH BLOCK, sentencepiece's visible space.
constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";

uint32_t ReadLittleEndian32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
         (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
}

// Fields of a darts-clone double-array unit.
uint32_t UnitOffset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }
bool UnitHasLeaf(uint32_t unit) { return ((unit >> 8) & 1) == 1; }
uint32_t UnitLabel(uint32_t unit) { return unit & ((1u << 31) | 0xFF); }
uint32_t UnitValue(uint32_t unit) { return unit & ((1u << 31) - 1); }

}  // namespace

absl::StatusOr<SentencePieceNormalizer> SentencePieceNormalizer::Create(
    std::string_view charsmap, Options options, std::vector<std::string> protected_pieces,
    const std::string& source) {
  SentencePieceNormalizer normalizer;
  normalizer.options_ = options;
  if (!charsmap.empty()) {
    if (charsmap.size() <= 4) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": normalizer_spec.precompiled_charsmap is broken (",
                       charsmap.size(), " bytes)"));
    }
    const uint32_t trie_bytes = ReadLittleEndian32(charsmap.data());
    if (trie_bytes >= charsmap.size() - 4) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": normalizer_spec.precompiled_charsmap: trie of ", trie_bytes,
                       " bytes does not fit in the ", charsmap.size(), "-byte blob"));
    }
    normalizer.units_.resize(trie_bytes / 4);
    for (size_t i = 0; i < normalizer.units_.size(); ++i) {
      normalizer.units_[i] = ReadLittleEndian32(charsmap.data() + 4 + 4 * i);
    }
    normalizer.pool_ = std::string(charsmap.substr(4 + trie_bytes));
    if (normalizer.pool_.back() != '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": normalizer_spec.precompiled_charsmap: replacement pool is not ",
                       "NUL-terminated"));
    }
  }
  for (auto& piece : protected_pieces) {
    if (piece.empty()) continue;
    normalizer.protected_lengths_.push_back(piece.size());
    normalizer.protected_.insert(std::move(piece));
  }
  auto& lengths = normalizer.protected_lengths_;
  std::sort(lengths.begin(), lengths.end(), std::greater<size_t>());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  return normalizer;
}

std::pair<size_t, uint32_t> SentencePieceNormalizer::LongestRule(std::string_view text) const {
  size_t best_length = 0;
  uint32_t best_value = 0;
  if (units_.empty()) return {best_length, best_value};
  // Walk the double array one byte at a time; every node with a leaf child ends a key. Indices
  // outside the array end the walk (a corrupt trie cannot read out of bounds).
  uint32_t node = UnitOffset(units_[0]);
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    node ^= byte;
    if (node >= units_.size()) break;
    const uint32_t unit = units_[node];
    if (UnitLabel(unit) != byte) break;
    node ^= UnitOffset(unit);
    if (UnitHasLeaf(unit)) {
      if (node >= units_.size()) break;
      const uint32_t value = UnitValue(units_[node]);
      if (value < pool_.size()) {
        best_length = i + 1;
        best_value = value;
      }
    }
  }
  return {best_length, best_value};
}

std::pair<std::string_view, size_t> SentencePieceNormalizer::NormalizePrefix(
    std::string_view text) const {
  for (size_t length : protected_lengths_) {
    if (length <= text.size() && protected_.contains(absl::string_view(text.data(), length))) {
      return {text.substr(0, length), length};
    }
  }
  const auto [rule_length, value] = LongestRule(text);
  if (rule_length > 0) return {std::string_view(pool_.data() + value), rule_length};
  const size_t length = std::min(Utf8SequenceLength(text[0]), text.size());
  return {text.substr(0, length), length};
}

std::string SentencePieceNormalizer::Normalize(std::string_view text) const {
  std::string out;
  if (text.empty()) return out;
  out.reserve(text.size() * 3);

  const std::string_view space = options_.escape_whitespaces ? kSpaceSymbol : " ";
  if (options_.add_dummy_prefix) out.append(space);

  // sentencepiece first skips the characters that normalize to exactly " "; starting as if a
  // space preceded drops the same leading spaces, and when nothing else remains the dummy prefix
  // goes with the trailing spaces below, so the output is the same.
  bool previous_is_space = options_.remove_extra_whitespaces;
  while (!text.empty()) {
    auto [normalized, consumed] = NormalizePrefix(text);
    text.remove_prefix(consumed);
    // Spaces that follow a space are dropped (only when removing extra whitespace).
    while (previous_is_space && !normalized.empty() && normalized.front() == ' ') {
      normalized.remove_prefix(1);
    }
    if (!normalized.empty()) {
      for (char c : normalized) {
        if (c == ' ') {
          out.append(space);
        } else {
          out.push_back(c);
        }
      }
      previous_is_space = normalized.back() == ' ';
    }
    if (!options_.remove_extra_whitespaces) previous_is_space = false;
  }

  if (options_.remove_extra_whitespaces) {
    // Trailing spaces go, whatever produced them (a U+2581 in the input counts when escaping).
    while (out.size() >= space.size() &&
           std::string_view(out).substr(out.size() - space.size()) == space) {
      out.resize(out.size() - space.size());
    }
  }
  return out;
}

}  // namespace tlcm
