#include "text/sentencepiece_model.h"

#include <algorithm>
#include <cfloat>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "text/utf8.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Field numbers of sentencepiece_model.proto that encoding needs.
constexpr int kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3;
constexpr int kPieceText = 1, kPieceScore = 2, kPieceType = 3;
constexpr int kTrainerModelType = 3, kTrainerTreatWhitespaceAsSuffix = 24,
              kTrainerByteFallback = 35;
constexpr int kNormalizerCharsmap = 2, kNormalizerAddDummyPrefix = 3,
              kNormalizerRemoveExtraWhitespaces = 4, kNormalizerEscapeWhitespaces = 5;

constexpr int kUnigram = 1;    // TrainerSpec.ModelType
constexpr int kBytePiece = 6;  // SentencePiece.Type BYTE
constexpr float kUnkPenalty = 10.0f;

// Reads one protobuf message's fields. Errors name the source, the message and the byte offset
// in the whole file.
class WireReader {
 public:
  WireReader(std::string_view data, size_t base, std::string message, const std::string& source)
      : data_(data), base_(base), message_(std::move(message)), source_(source) {}

  bool done() const { return pos_ >= data_.size(); }

  // Reads the next field key.
  absl::Status NextField(int* field, int* wire_type) {
    const size_t start = pos_;
    uint64_t key = 0;
    TLCM_RETURN_IF_ERROR(Varint(&key));
    *field = static_cast<int>(key >> 3);
    *wire_type = static_cast<int>(key & 7);
    if (*field == 0 || (key >> 3) > 0x1FFFFFFF) return Error(start, "invalid field number");
    return absl::OkStatus();
  }

  // Reads the value of a field whose key has been read, checking its wire type.
  absl::Status Varint(int field, int wire_type, uint64_t* value) {
    TLCM_RETURN_IF_ERROR(Expect(field, wire_type, kVarint));
    return Varint(value);
  }
  absl::Status Fixed32(int field, int wire_type, uint32_t* value) {
    TLCM_RETURN_IF_ERROR(Expect(field, wire_type, kFixed32));
    if (data_.size() - pos_ < 4) return Error(pos_, "truncated fixed32");
    const auto* b = reinterpret_cast<const unsigned char*>(data_.data() + pos_);
    *value = static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
             (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
    pos_ += 4;
    return absl::OkStatus();
  }
  // A length-delimited value (bytes, string or embedded message) and its offset in the file.
  absl::Status Bytes(int field, int wire_type, std::string_view* value, size_t* offset) {
    TLCM_RETURN_IF_ERROR(Expect(field, wire_type, kLengthDelimited));
    uint64_t length = 0;
    const size_t start = pos_;
    TLCM_RETURN_IF_ERROR(Varint(&length));
    if (length > data_.size() - pos_) {
      return Error(start, absl::StrCat("field ", field, " claims ", length, " bytes, ",
                                       data_.size() - pos_, " remain"));
    }
    *value = data_.substr(pos_, length);
    *offset = base_ + pos_;
    pos_ += length;
    return absl::OkStatus();
  }

  // Skips a field this reader does not use.
  absl::Status Skip(int field, int wire_type) {
    uint64_t ignored = 0;
    switch (wire_type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        if (data_.size() - pos_ < 8) return Error(pos_, "truncated fixed64");
        pos_ += 8;
        return absl::OkStatus();
      case kFixed32:
        if (data_.size() - pos_ < 4) return Error(pos_, "truncated fixed32");
        pos_ += 4;
        return absl::OkStatus();
      case kLengthDelimited: {
        std::string_view bytes;
        size_t offset = 0;
        return Bytes(field, wire_type, &bytes, &offset);
      }
      default:
        return Error(pos_, absl::StrCat("field ", field, " has unsupported wire type ", wire_type));
    }
  }

 private:
  absl::Status Varint(uint64_t* value) {
    const size_t start = pos_;
    *value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return Error(start, "truncated varint");
      const auto byte = static_cast<unsigned char>(data_[pos_++]);
      *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return absl::OkStatus();
    }
    return Error(start, "varint longer than 10 bytes");
  }

  absl::Status Expect(int field, int wire_type, int expected) {
    if (wire_type == expected) return absl::OkStatus();
    return Error(
        pos_, absl::StrCat("field ", field, " has wire type ", wire_type, ", expected ", expected));
  }

  absl::Status Error(size_t at, std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": malformed sentencepiece model: ", std::string(what), " in ",
                     message_, " at byte ", base_ + at));
  }

  std::string_view data_;
  size_t pos_ = 0;
  size_t base_;
  std::string message_;
  const std::string& source_;
};

// What encoding needs from a ModelProto (proto2 defaults where a field is absent).
struct ParsedModel {
  struct RawPiece {
    std::string text;
    float score = 0;
    int type = 1;  // NORMAL
  };
  std::vector<RawPiece> pieces;
  int model_type = kUnigram;
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  std::string charsmap;
  SentencePieceNormalizer::Options normalizer;
};

absl::Status ParsePiece(std::string_view bytes, size_t offset, const std::string& source,
                        ParsedModel::RawPiece* piece) {
  WireReader reader(bytes, offset, "ModelProto.pieces", source);
  while (!reader.done()) {
    int field = 0, wire_type = 0;
    TLCM_RETURN_IF_ERROR(reader.NextField(&field, &wire_type));
    if (field == kPieceText) {
      std::string_view text;
      size_t at = 0;
      TLCM_RETURN_IF_ERROR(reader.Bytes(field, wire_type, &text, &at));
      piece->text = std::string(text);
    } else if (field == kPieceScore) {
      uint32_t bits = 0;
      TLCM_RETURN_IF_ERROR(reader.Fixed32(field, wire_type, &bits));
      std::memcpy(&piece->score, &bits, sizeof(float));
    } else if (field == kPieceType) {
      uint64_t type = 0;
      TLCM_RETURN_IF_ERROR(reader.Varint(field, wire_type, &type));
      piece->type = static_cast<int>(type);
    } else {
      TLCM_RETURN_IF_ERROR(reader.Skip(field, wire_type));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseTrainerSpec(std::string_view bytes, size_t offset, const std::string& source,
                              ParsedModel* model) {
  WireReader reader(bytes, offset, "ModelProto.trainer_spec", source);
  while (!reader.done()) {
    int field = 0, wire_type = 0;
    TLCM_RETURN_IF_ERROR(reader.NextField(&field, &wire_type));
    uint64_t value = 0;
    if (field == kTrainerModelType) {
      TLCM_RETURN_IF_ERROR(reader.Varint(field, wire_type, &value));
      model->model_type = static_cast<int>(value);
    } else if (field == kTrainerByteFallback) {
      TLCM_RETURN_IF_ERROR(reader.Varint(field, wire_type, &value));
      model->byte_fallback = value != 0;
    } else if (field == kTrainerTreatWhitespaceAsSuffix) {
      TLCM_RETURN_IF_ERROR(reader.Varint(field, wire_type, &value));
      model->treat_whitespace_as_suffix = value != 0;
    } else {
      TLCM_RETURN_IF_ERROR(reader.Skip(field, wire_type));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseNormalizerSpec(std::string_view bytes, size_t offset, const std::string& source,
                                 ParsedModel* model) {
  WireReader reader(bytes, offset, "ModelProto.normalizer_spec", source);
  while (!reader.done()) {
    int field = 0, wire_type = 0;
    TLCM_RETURN_IF_ERROR(reader.NextField(&field, &wire_type));
    uint64_t value = 0;
    if (field == kNormalizerCharsmap) {
      std::string_view charsmap;
      size_t at = 0;
      TLCM_RETURN_IF_ERROR(reader.Bytes(field, wire_type, &charsmap, &at));
      model->charsmap = std::string(charsmap);
    } else if (field == kNormalizerAddDummyPrefix) {
      TLCM_RETURN_IF_ERROR(reader.Varint(field, wire_type, &value));
      model->normalizer.add_dummy_prefix = value != 0;
    } else if (field == kNormalizerRemoveExtraWhitespaces) {
      TLCM_RETURN_IF_ERROR(reader.Varint(field, wire_type, &value));
      model->normalizer.remove_extra_whitespaces = value != 0;
    } else if (field == kNormalizerEscapeWhitespaces) {
      TLCM_RETURN_IF_ERROR(reader.Varint(field, wire_type, &value));
      model->normalizer.escape_whitespaces = value != 0;
    } else {
      TLCM_RETURN_IF_ERROR(reader.Skip(field, wire_type));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedModel> ParseModelProto(std::string_view bytes, const std::string& source) {
  ParsedModel model;
  WireReader reader(bytes, 0, "ModelProto", source);
  while (!reader.done()) {
    int field = 0, wire_type = 0;
    TLCM_RETURN_IF_ERROR(reader.NextField(&field, &wire_type));
    std::string_view message;
    size_t offset = 0;
    if (field == kModelPieces) {
      TLCM_RETURN_IF_ERROR(reader.Bytes(field, wire_type, &message, &offset));
      TLCM_RETURN_IF_ERROR(ParsePiece(message, offset, source, &model.pieces.emplace_back()));
    } else if (field == kModelTrainerSpec) {
      // A repeated embedded message merges into the earlier ones, as protobuf does.
      TLCM_RETURN_IF_ERROR(reader.Bytes(field, wire_type, &message, &offset));
      TLCM_RETURN_IF_ERROR(ParseTrainerSpec(message, offset, source, &model));
    } else if (field == kModelNormalizerSpec) {
      TLCM_RETURN_IF_ERROR(reader.Bytes(field, wire_type, &message, &offset));
      TLCM_RETURN_IF_ERROR(ParseNormalizerSpec(message, offset, source, &model));
    } else {
      TLCM_RETURN_IF_ERROR(reader.Skip(field, wire_type));
    }
  }
  return model;
}

std::string ModelTypeName(int type) {
  switch (type) {
    case 2:
      return "BPE";
    case 3:
      return "WORD";
    case 4:
      return "CHAR";
    default:
      return absl::StrCat(type);
  }
}

}  // namespace

absl::StatusOr<SentencePieceModel> SentencePieceModel::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": read error"));
  return FromSerialized(bytes.str(), path);
}

absl::StatusOr<SentencePieceModel> SentencePieceModel::FromSerialized(std::string_view bytes,
                                                                      const std::string& source) {
  TLCM_ASSIGN_OR_RETURN(ParsedModel parsed, ParseModelProto(bytes, source));
  auto unsupported = [&source](std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": unsupported sentencepiece model: ", std::string(what)));
  };
  if (parsed.model_type != kUnigram) {
    return unsupported(absl::StrCat("trainer_spec.model_type ", ModelTypeName(parsed.model_type),
                                    " (only UNIGRAM)"));
  }
  if (parsed.byte_fallback) return unsupported("trainer_spec.byte_fallback is set");
  if (parsed.treat_whitespace_as_suffix) {
    return unsupported("trainer_spec.treat_whitespace_as_suffix is set");
  }
  if (parsed.pieces.empty()) return unsupported("no pieces");

  std::vector<Piece> pieces;
  std::vector<std::string> user_defined;
  pieces.reserve(parsed.pieces.size());
  for (size_t id = 0; id < parsed.pieces.size(); ++id) {
    auto& raw = parsed.pieces[id];
    if (raw.text.empty()) return unsupported(absl::StrCat("piece ", id, " is empty"));
    if (raw.type == kBytePiece) {
      return unsupported(absl::StrCat("BYTE piece ", id, " (\"", raw.text, "\")"));
    }
    if (raw.type < 1 || raw.type > 5) {
      return unsupported(
          absl::StrCat("piece ", id, " (\"", raw.text, "\") has unknown type ", raw.type));
    }
    const auto type = static_cast<PieceType>(raw.type);
    if (type == PieceType::kUserDefined) user_defined.push_back(raw.text);
    pieces.push_back({std::move(raw.text), raw.score, type});
  }
  TLCM_ASSIGN_OR_RETURN(auto normalizer,
                        SentencePieceNormalizer::Create(parsed.charsmap, parsed.normalizer,
                                                        std::move(user_defined), source));
  SentencePieceModel model(std::move(pieces), std::move(normalizer));

  // sentencepiece keeps two maps, one for control/unknown pieces and one for the others; a text
  // may appear once in each.
  absl::flat_hash_map<std::string, int> reserved, ordinary;
  for (int id = 0; id < model.size(); ++id) {
    const Piece& piece = model.pieces_[id];
    const bool is_reserved = piece.type == PieceType::kControl || piece.type == PieceType::kUnknown;
    if (!(is_reserved ? reserved : ordinary).emplace(piece.text, id).second) {
      return unsupported(absl::StrCat("piece \"", piece.text, "\" is defined twice"));
    }
    if (piece.type == PieceType::kUnknown) {
      if (model.unk_id_ >= 0) {
        return unsupported(
            absl::StrCat("pieces ", model.unk_id_, " and ", id, " are both UNKNOWN"));
      }
      model.unk_id_ = id;
    }
  }
  if (model.unk_id_ < 0) return unsupported("no UNKNOWN piece");
  model.ids_ = std::move(reserved);
  model.ids_.insert(ordinary.begin(), ordinary.end());  // keeps reserved entries on a clash
  return model;
}

SentencePieceModel::SentencePieceModel(std::vector<Piece> pieces,
                                       SentencePieceNormalizer normalizer)
    : pieces_(std::move(pieces)), normalizer_(std::move(normalizer)) {
  // Scores of NORMAL pieces bound the unknown and user-defined scores; the initial values are
  // sentencepiece's (FLT_MIN, the smallest positive float, as the start of the maximum).
  min_score_ = FLT_MAX;
  max_score_ = FLT_MIN;
  trie_.emplace_back();
  for (int id = 0; id < size(); ++id) {
    const Piece& piece = pieces_[id];
    if (piece.type == PieceType::kNormal) {
      min_score_ = std::min(min_score_, piece.score);
      max_score_ = std::max(max_score_, piece.score);
    }
    if (piece.type != PieceType::kNormal && piece.type != PieceType::kUserDefined &&
        piece.type != PieceType::kUnused) {
      continue;
    }
    int node = 0;
    for (char c : piece.text) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
      auto [it, inserted] = edges_.emplace(key, static_cast<int>(trie_.size()));
      if (inserted) trie_.emplace_back();
      node = it->second;
    }
    trie_[node].piece = id;
  }
}

int SentencePieceModel::Child(int node, unsigned char byte) const {
  auto it = edges_.find((static_cast<uint64_t>(node) << 8) | byte);
  return it == edges_.end() ? -1 : it->second;
}

int SentencePieceModel::PieceToId(std::string_view piece) const {
  auto it = ids_.find(absl::string_view(piece.data(), piece.size()));
  return it == ids_.end() ? unk_id_ : it->second;
}

std::vector<SentencePieceModel::EncodedPiece> SentencePieceModel::Encode(
    std::string_view text) const {
  const std::string normalized = normalizer_.Normalize(text);
  const size_t size = normalized.size();
  std::vector<EncodedPiece> result;
  if (size == 0) return result;

  // best[e]: the best segmentation of normalized[0, e) ends with the piece normalized[start, e).
  // Scores accumulate in float as in sentencepiece; the user-defined score is a double there, so
  // that candidate is compared (and rounded when stored) the same way.
  struct Best {
    int id = -1;
    float score = 0;
    int start = -1;
  };
  std::vector<Best> best(size + 1);
  const float unk_score = min_score_ - kUnkPenalty;
  size_t start = 0;
  while (start < size) {
    const float score_here = best[start].score;
    const size_t char_length = std::min(Utf8SequenceLength(normalized[start]), size - start);
    bool covers_one_char = false;
    int node = 0;
    for (size_t end = start; end < size;) {
      node = Child(node, static_cast<unsigned char>(normalized[end]));
      if (node < 0) break;
      ++end;
      const int id = trie_[node].piece;
      if (id < 0 || pieces_[id].type == PieceType::kUnused) continue;
      const size_t length = end - start;
      Best& target = best[end];
      if (pieces_[id].type == PieceType::kUserDefined) {
        const double candidate =
            (static_cast<double>(static_cast<float>(length) * max_score_) - 0.1) + score_here;
        if (target.start < 0 || candidate > target.score) {
          target = {id, static_cast<float>(candidate), static_cast<int>(start)};
        }
      } else {
        const float candidate = pieces_[id].score + score_here;
        if (target.start < 0 || candidate > target.score) {
          target = {id, candidate, static_cast<int>(start)};
        }
      }
      if (length == char_length) covers_one_char = true;
    }
    if (!covers_one_char) {
      Best& target = best[start + char_length];
      const float candidate = unk_score + score_here;
      if (target.start < 0 || candidate > target.score) {
        target = {unk_id_, candidate, static_cast<int>(start)};
      }
    }
    start += char_length;
  }

  for (size_t end = size; end > 0;) {
    const Best& node = best[end];
    result.push_back({normalized.substr(node.start, end - node.start), node.id});
    end = static_cast<size_t>(node.start);
  }
  std::reverse(result.begin(), result.end());

  // Consecutive unknown pieces become one (sentencepiece does this when it builds its result).
  std::vector<EncodedPiece> merged;
  merged.reserve(result.size());
  for (auto& piece : result) {
    if (!merged.empty() && piece.id == unk_id_ && merged.back().id == unk_id_) {
      merged.back().piece += piece.piece;
    } else {
      merged.push_back(std::move(piece));
    }
  }
  return merged;
}

}  // namespace tlcm
