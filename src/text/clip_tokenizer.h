// CLIP's byte-level BPE tokenizer, equal to transformers' slow CLIPTokenizer (4.39) as it runs
// without ftfy: added tokens split out first, then BERT's BasicTokenizer pass and CLIP's word regex
// (text/clip_pretokenizer.h), then BPE with a word-final "</w>" (text/byte_level_bpe.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "text/byte_level_bpe.h"
#include "text/word_id_cache.h"

namespace tlcm {

class ClipTokenizer {
 public:
  // Loads a saved tokenizer folder: vocab.json and merges.txt (required; as transformers, the first
  // line of merges.txt is a header and at most 49152 - 256 - 2 merges are read), and, when present,
  // tokenizer_config.json (model_max_length, default 77; special tokens; added_tokens_decoder),
  // special_tokens_map.json and added_tokens.json, which transformers reads only when
  // tokenizer_config.json has no added_tokens_decoder (special_tokens_map.json then overrides the
  // config's special tokens). Missing special tokens take CLIPTokenizer's defaults (bos
  // "<|startoftext|>", eos / unk / pad "<|endoftext|>"). The special and added tokens are split out
  // of the text before anything else (SDXL's tokenizer_2 pads with "!", so every "!" in a prompt
  // becomes token 0 there). Token ids come from added_tokens_decoder / added_tokens.json, else from
  // vocab.json. Errors (NotFound / InvalidArgument) name the file: a missing or malformed file, a
  // special token that has no id, an added token with lstrip / rstrip / single_word (unsupported).
  static absl::StatusOr<ClipTokenizer> FromFolder(const std::string& dir);

  ClipTokenizer(ClipTokenizer&&) noexcept;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept;
  ~ClipTokenizer();

  // BPE token ids of UTF-8 `text` (invalid bytes count as U+FFFD, which is dropped), no BOS/EOS,
  // not truncated. Thread-safe.
  std::vector<int64_t> Tokenize(std::string_view text) const;
  // BOS + the first max_length() - 2 ids of Tokenize(text) + EOS, right-padded with pad_id() to
  // max_length() (what `tokenizer(text, padding="max_length", truncation=True)` returns).
  // Thread-safe.
  std::vector<int64_t> Encode(std::string_view text) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int max_length() const { return max_length_; }

 private:
  struct AddedToken {
    std::u32string content;
    int64_t id;
  };

  ClipTokenizer() = default;
  // Ids of one word (UTF-8 bytes) of the pre-tokenizer's output.
  std::vector<int64_t> WordIds(const std::string& word) const;

  std::unique_ptr<ByteLevelBpe> bpe_;
  std::vector<int64_t> symbol_ids_;  // token id of each BPE symbol (unk when not in the vocab)
  std::vector<AddedToken> added_;    // split out of the raw text, longest first
  // Words the reference's BPE cache maps to themselves ("<|startoftext|>", "<|endoftext|>").
  absl::flat_hash_map<std::string, int64_t> whole_words_;
  std::unique_ptr<WordIdCache> cache_;
  int64_t bos_id_ = 0;
  int64_t eos_id_ = 0;
  int64_t pad_id_ = 0;
  int max_length_ = 77;
};

}  // namespace tlcm
