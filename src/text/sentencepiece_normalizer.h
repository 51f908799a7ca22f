// SentencePiece's text normalizer: the precompiled character map (NFKC-like rewrite rules), then
// whitespace handling (drop leading/trailing/repeated spaces, add a dummy prefix, write spaces as
// U+2581).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"

namespace tlcm {

// Reproduces sentencepiece's normalizer (normalizer.cc) for NormalizerSpec's
// precompiled_charsmap, add_dummy_prefix, remove_extra_whitespaces and escape_whitespaces.
//
// The precompiled charsmap is a 4-byte little-endian size N, N bytes of a darts-clone
// double-array trie (32-bit little-endian units) whose keys are UTF-8 sources, and a pool of
// NUL-terminated replacements that the trie's values index. At every position the longest key
// that prefixes the remaining text is replaced; text no key matches is copied one character at a
// time. Protected pieces (the model's user-defined symbols) are copied unchanged, longest first,
// before the charsmap is consulted.
//
// Immutable after Create(); Normalize() is thread-safe.
class SentencePieceNormalizer {
 public:
  struct Options {
    bool add_dummy_prefix = true;  // proto defaults of NormalizerSpec
    bool remove_extra_whitespaces = true;
    bool escape_whitespaces = true;
  };

  // `charsmap` may be empty (identity rules, as for normalization "identity"). Errors:
  // InvalidArgument naming `source` when the blob's sizes are inconsistent.
  static absl::StatusOr<SentencePieceNormalizer> Create(std::string_view charsmap, Options options,
                                                        std::vector<std::string> protected_pieces,
                                                        const std::string& source);

  // Normalizes `text`, which must be valid UTF-8 (T5Tokenizer passes text through DecodeUtf8,
  // which turns each invalid byte into U+FFFD as sentencepiece does). Empty or all-space input
  // gives "".
  std::string Normalize(std::string_view text) const;

 private:
  SentencePieceNormalizer() = default;

  // The normalized form of the start of `text` (a view into the pool, into `text`, or empty) and
  // the number of bytes of `text` it replaces (at least 1 for non-empty text).
  std::pair<std::string_view, size_t> NormalizePrefix(std::string_view text) const;

  // Longest charsmap key that prefixes `text`: its length (0 if none) and pool offset.
  std::pair<size_t, uint32_t> LongestRule(std::string_view text) const;

  std::vector<uint32_t> units_;  // the double-array trie, host byte order
  std::string pool_;             // NUL-terminated replacements
  Options options_;
  absl::flat_hash_set<std::string> protected_;
  std::vector<size_t> protected_lengths_;  // distinct lengths of protected_, longest first
};

}  // namespace tlcm
