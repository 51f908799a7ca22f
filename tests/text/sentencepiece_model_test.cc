// SentencePieceModel against sentencepiece 0.2.3 itself (tests/data/tokenizers/t5_cases.json,
// section "sentencepiece", from tools/make_t5_tokenizer_cases.py) on two models trained by
// tools/train_t5_test_spm.py:
//   t5-spm/          T5-like: unigram, 16000 pieces, nmt_nfkc charsmap, <pad>/</s>/<unk> = 0/1/2
//   t5-spm-variant/  unigram, 1000 pieces, identity normalization, user-defined symbols,
//                    remove_extra_whitespaces=false
// plus hand-built models for the Viterbi rules and malformed files.
#include "text/sentencepiece_model.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tlcm {
namespace {

std::string DataPath(const std::string& relative) {
  return std::string(TLCM_TEST_DATA_DIR) + "/" + relative;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// A small protobuf writer for hand-made ModelProtos.
std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}
std::string VarintField(int field, uint64_t value) {
  return Varint(field << 3 | 0) + Varint(value);
}
std::string BytesField(int field, const std::string& bytes) {
  return Varint(field << 3 | 2) + Varint(bytes.size()) + bytes;
}
std::string FloatField(int field, float value) {
  std::string out = Varint(field << 3 | 5);
  uint32_t bits = 0;
  std::memcpy(&bits, &value, 4);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  return out;
}
std::string Piece(const std::string& text, float score, int type = 1) {
  return BytesField(1, BytesField(1, text) + FloatField(2, score) + VarintField(3, type));
}
// Identity normalization with the proto defaults for the whitespace options.
std::string IdentityNormalizer() { return BytesField(3, BytesField(1, "identity")); }

absl::StatusOr<SentencePieceModel> Parse(const std::string& bytes) {
  return SentencePieceModel::FromSerialized(bytes, "test.model");
}

void ExpectError(const std::string& bytes, const std::string& fragment) {
  auto model = Parse(bytes);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << model.status();
  EXPECT_NE(model.status().message().find("test.model"), std::string::npos) << model.status();
  EXPECT_NE(model.status().message().find(fragment), std::string::npos) << model.status();
}

TEST(SentencePieceModelTest, MatchesSentencepieceOnRecordedCases) {
  std::ifstream in(DataPath("tokenizers/t5_cases.json"));
  ASSERT_TRUE(in) << "missing t5_cases.json";
  const nlohmann::json cases = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& group : cases.at("sentencepiece")) {
    const std::string dir = group.at("dir").get<std::string>();
    auto model = SentencePieceModel::FromFile(DataPath(dir + "/spiece.model"));
    ASSERT_TRUE(model.ok()) << model.status();
    for (const auto& c : group.at("cases")) {
      const std::string text = c.at("text").get<std::string>();
      EXPECT_EQ(model->Normalize(text), c.at("normalized").get<std::string>())
          << dir << ": " << text;
      std::vector<std::string> pieces;
      std::vector<int> ids;
      for (const auto& piece : model->Encode(text)) {
        pieces.push_back(piece.piece);
        ids.push_back(piece.id);
      }
      EXPECT_EQ(pieces, c.at("pieces").get<std::vector<std::string>>()) << dir << ": " << text;
      EXPECT_EQ(ids, c.at("ids").get<std::vector<int>>()) << dir << ": " << text;
      ++checked;
    }
  }
  EXPECT_GE(checked, 600);
}

TEST(SentencePieceModelTest, ReadsPiecesAndTypes) {
  auto model = SentencePieceModel::FromFile(DataPath("t5-spm/spiece.model"));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->size(), 16000);
  EXPECT_EQ(model->unk_id(), 2);
  EXPECT_EQ(model->IdToPiece(0), "<pad>");
  EXPECT_EQ(model->type(1), SentencePieceModel::PieceType::kControl);
  EXPECT_EQ(model->PieceToId("</s>"), 1);
  EXPECT_EQ(model->PieceToId("no such piece"), 2);
  EXPECT_TRUE(model->HasPiece("<unk>"));
}

TEST(SentencePieceModelTest, ViterbiPrefersHigherTotalScore) {
  const std::string bytes = Piece("<unk>", 0, 2) +
                            Piece(
                                "\xe2\x96\x81"
                                "a",
                                -1) +
                            Piece("b", -1) +
                            Piece(
                                "\xe2\x96\x81"
                                "ab",
                                -3) +
                            Piece("c", -2) + Piece("bc", -2.5) + Piece("zz", -1, 5) +
                            IdentityNormalizer();
  auto model = Parse(bytes);
  ASSERT_TRUE(model.ok()) << model.status();
  // "▁abc": ▁a + bc (-3.5) beats ▁ab + c (-5) and ▁a + b + c (-4).
  auto pieces = model->Encode("abc");
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].id, 1);
  EXPECT_EQ(pieces[1].id, 5);
  // Unknown characters (and the unused piece "zz") become one merged unknown piece.
  pieces = model->Encode("azzé");
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[1].piece, "zz\xc3\xa9");
  EXPECT_EQ(pieces[1].id, 0);
}

TEST(SentencePieceModelTest, UserDefinedPiecesWin) {
  const std::string bytes = Piece("<unk>", 0, 2) + Piece("\xe2\x96\x81", -1) + Piece("a", -1) +
                            Piece("b", -1) + Piece("ab", -0.5) + Piece("<b>", 0, 4) +
                            Piece(
                                "\xe2\x96\x81"
                                "a<",
                                -0.1) +
                            IdentityNormalizer();
  auto model = Parse(bytes);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<int> ids;
  for (const auto& piece : model->Encode("a<b>b")) ids.push_back(piece.id);
  // ▁ a <b> b: the user-defined "<b>" beats the better-scored "▁a<" overlap.
  EXPECT_EQ(ids, (std::vector<int>{1, 2, 5, 3}));
}

TEST(SentencePieceModelTest, EmptyAndSpaceOnlyTextGiveNoPieces) {
  auto model = SentencePieceModel::FromFile(DataPath("t5-spm/spiece.model"));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(model->Encode("").empty());
  EXPECT_TRUE(model->Encode(" \t\n ").empty());
}

TEST(SentencePieceModelTest, MissingFileIsNotFound) {
  auto model = SentencePieceModel::FromFile("/nonexistent/spiece.model");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(model.status().message().find("/nonexistent/spiece.model"), std::string::npos);
}

TEST(SentencePieceModelTest, TruncatedFilesAreRejected) {
  const std::string bytes = ReadFile(DataPath("t5-spm/spiece.model"));
  ASSERT_GT(bytes.size(), 1000u);
  // Cuts inside a piece, inside the trainer spec and inside the charsmap.
  for (size_t cut : {size_t{3}, size_t{1001}, bytes.size() / 2, bytes.size() - 7}) {
    auto model = Parse(bytes.substr(0, cut));
    ASSERT_FALSE(model.ok()) << "cut at " << cut;
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(model.status().message().find("test.model"), std::string::npos) << model.status();
  }
}

TEST(SentencePieceModelTest, MalformedWireFormatIsRejected) {
  const std::string unk = Piece("<unk>", 0, 2);
  ExpectError(VarintField(1, 5) + unk, "field 1 has wire type 0, expected 2");
  ExpectError(unk + BytesField(1, FloatField(1, 1.0f)), "field 1 has wire type 5, expected 2");
  ExpectError(unk + BytesField(1, BytesField(2, "x")), "field 2 has wire type 2, expected 5");
  ExpectError(unk + Varint(2 << 3 | 2) + Varint(1000) + "abc", "claims 1000 bytes");
  ExpectError(unk + Varint(9 << 3 | 3), "unsupported wire type 3");
  ExpectError(unk + std::string("\x48\xff\xff", 3), "truncated varint");
  ExpectError(unk + std::string(11, '\xff'), "varint longer than 10 bytes");
  ExpectError(unk + Varint(0 << 3 | 0) + Varint(1), "invalid field number");
}

TEST(SentencePieceModelTest, UnsupportedModelsAreRejected) {
  const std::string unk = Piece("<unk>", 0, 2);
  ExpectError(unk + BytesField(2, VarintField(3, 2)), "model_type BPE");
  ExpectError(unk + BytesField(2, VarintField(3, 4)), "model_type CHAR");
  ExpectError(unk + BytesField(2, VarintField(35, 1)), "byte_fallback");
  ExpectError(unk + BytesField(2, VarintField(24, 1)), "treat_whitespace_as_suffix");
  ExpectError(unk + Piece("<0x41>", 0, 6), "BYTE piece 1");
  ExpectError(unk + Piece("x", 0, 9), "unknown type 9");
  ExpectError(unk + Piece("", 0), "piece 1 is empty");
  ExpectError(unk + Piece("x", 0) + Piece("x", -1), "\"x\" is defined twice");
  ExpectError(unk + Piece("<u2>", 0, 2), "both UNKNOWN");
  ExpectError(Piece("x", 0), "no UNKNOWN piece");
  ExpectError(IdentityNormalizer(), "no pieces");
  // A charsmap whose trie size runs past the blob.
  ExpectError(unk + BytesField(3, BytesField(2, std::string("\xff\x00\x00\x00"
                                                            "abcd",
                                                            8))),
              "does not fit");
}

}  // namespace
}  // namespace tlcm
