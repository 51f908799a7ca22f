// The T5 tokenizer of FLUX's tokenizer_2 folder: transformers' slow T5Tokenizer (legacy mode)
// over our own SentencePiece reader.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "text/sentencepiece_model.h"

namespace tlcm {

// Reproduces T5Tokenizer.from_pretrained(dir) of transformers 4.39 with legacy=True (what FLUX's
// tokenizer_config.json sets; add_prefix_space only matters without legacy), called as
// tokenizer(text, padding="max_length", truncation=True, max_length=L).input_ids:
//   1. the text is split on the added tokens (<pad>, </s>, <unk>, <extra_id_N>, ...), leftmost
//      first; a token with rstrip / lstrip eats the Python-whitespace after / before it;
//   2. every remaining non-empty stretch is encoded by spiece.model on its own (so each one gets
//      the dummy-prefix space), and its pieces become ids through their text: an added token of
//      that text first, then the model's PieceToId (unknown text -> the unk id);
//   3. Encode truncates to max_length - 1 ids, appends EOS unless the last id already is EOS (a
//      literal "</s>" at the end of the prompt), and pads to max_length.
//
// Added tokens are resolved from the folder the way transformers does: the <extra_id_N> sentinels
// of `extra_ids` (ids vocab_size - 1 + extra_ids - N, stripping both sides), overridden by
// tokenizer_config.json's added_tokens_decoder when present, or else by added_tokens.json and the
// added_tokens of tokenizer.json (with special_tokens_map.json naming the special tokens); the
// eos/unk/pad/additional special tokens that are still missing are looked up among the pieces.
// Rejected with an error naming the file: legacy=false, sp_model_kwargs, single_word tokens,
// added tokens that contain one another, special tokens found nowhere, and extra_ids that does not
// match the <extra_id_N> entries of additional_special_tokens.
//
// Immutable after FromFolder(); all methods are thread-safe.
class T5Tokenizer {
 public:
  // Loads `dir`/spiece.model (required) and the optional tokenizer_config.json,
  // special_tokens_map.json, added_tokens.json and tokenizer.json.
  static absl::StatusOr<T5Tokenizer> FromFolder(const std::string& dir);

  // Ids of `text` (UTF-8; each invalid byte counts as U+FFFD), without EOS or padding.
  std::vector<int64_t> Tokenize(std::string_view text) const;

  // Exactly `max_length` ids: Tokenize(text) truncated to max_length - 1, EOS (unless already
  // last), then pad ids. max_length below 1 counts as 1, which gives {EOS}: transformers instead
  // skips truncation when max_length is 1 and returns more ids than asked.
  std::vector<int64_t> Encode(std::string_view text, int max_length) const;

  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  const SentencePieceModel& model() const { return model_; }

 private:
  struct AddedToken {
    int64_t id = 0;
    bool lstrip = false;  // eats whitespace before the token
    bool rstrip = false;  // eats whitespace after the token
  };

  explicit T5Tokenizer(SentencePieceModel model) : model_(std::move(model)) {}

  // The id of a piece's text, as transformers' convert_tokens_to_ids.
  int64_t TokenToId(std::string_view token) const;
  // The added token `text` is, or nullptr.
  const AddedToken* FindAdded(std::string_view text) const;

  SentencePieceModel model_;
  absl::flat_hash_map<std::string, AddedToken> added_;  // by content
  std::vector<size_t> added_lengths_;                   // distinct content sizes, longest first
  int64_t eos_id_ = 0;
  int64_t pad_id_ = 0;
};

}  // namespace tlcm
