// A SentencePiece unigram model (spiece.model) and its encoder, without libsentencepiece (whose
// bundled protobuf clashes with LibTorch's).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "text/sentencepiece_normalizer.h"

namespace tlcm {

// Reads a serialized sentencepiece ModelProto with a minimal protobuf wire-format reader (only the
// fields encoding needs; the others are skipped) and encodes text as sentencepiece's
// SentencePieceProcessor::Encode does for a unigram model: normalization (see
// SentencePieceNormalizer), then the Viterbi segmentation that maximizes the sum of piece scores.
// User-defined pieces score length * max_score - 0.1 so that they always win; a character no
// piece covers becomes the unknown piece with score min_score - 10; runs of unknown characters
// merge into one unknown piece.
//
// Supported: model_type UNIGRAM, piece types NORMAL, UNKNOWN (exactly one), CONTROL,
// USER_DEFINED, UNUSED. Rejected with an error naming the file: other model types, BYTE pieces or
// byte_fallback, treat_whitespace_as_suffix, unknown piece types, empty or duplicate pieces, and
// malformed protobuf (truncated data, wire types that do not fit the field).
//
// Immutable after loading; Encode() and the lookups are thread-safe.
class SentencePieceModel {
 public:
  enum class PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5 };

  // One piece of an encoding: its text (the normalized text it covers, U+2581 for spaces) and id.
  struct EncodedPiece {
    std::string piece;
    int id = 0;
  };

  // NotFound when the file is missing, InvalidArgument when it is malformed or unsupported.
  static absl::StatusOr<SentencePieceModel> FromFile(const std::string& path);
  // Parses serialized ModelProto bytes; `source` names them in errors.
  static absl::StatusOr<SentencePieceModel> FromSerialized(std::string_view bytes,
                                                           const std::string& source);

  // Normalizes and segments UTF-8 `text` (invalid bytes must already be replaced, see
  // SentencePieceNormalizer::Normalize). Empty or all-space text gives no pieces.
  std::vector<EncodedPiece> Encode(std::string_view text) const;

  // The normalized text Encode() segments.
  std::string Normalize(std::string_view text) const { return normalizer_.Normalize(text); }

  // sentencepiece's PieceToId: control/unknown pieces first, then the others; unk_id() when
  // `piece` is no piece.
  int PieceToId(std::string_view piece) const;
  // True when `piece` is the text of some piece (of any type).
  bool HasPiece(std::string_view piece) const {
    return ids_.contains(absl::string_view(piece.data(), piece.size()));
  }

  int size() const { return static_cast<int>(pieces_.size()); }
  int unk_id() const { return unk_id_; }
  const std::string& IdToPiece(int id) const { return pieces_.at(id).text; }
  PieceType type(int id) const { return pieces_.at(id).type; }

 private:
  struct Piece {
    std::string text;
    float score = 0;
    PieceType type = PieceType::kNormal;
  };
  // A byte trie over the pieces Viterbi may use (NORMAL, USER_DEFINED, UNUSED).
  struct TrieNode {
    int piece = -1;  // id of the piece ending here, -1 if none
  };

  SentencePieceModel(std::vector<Piece> pieces, SentencePieceNormalizer normalizer);

  // Child of `node` along `byte`, -1 if none.
  int Child(int node, unsigned char byte) const;

  std::vector<Piece> pieces_;
  SentencePieceNormalizer normalizer_;
  absl::flat_hash_map<std::string, int> ids_;  // PieceToId's map (control/unknown take precedence)
  std::vector<TrieNode> trie_;                 // node 0 is the root
  absl::flat_hash_map<uint64_t, int> edges_;   // (node << 8 | byte) -> child node
  int unk_id_ = -1;
  float min_score_ = 0;  // over NORMAL pieces, as sentencepiece computes them
  float max_score_ = 0;
};

}  // namespace tlcm
