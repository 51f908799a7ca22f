#include "text/byte_level_bpe.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "text/utf8.h"

namespace tlcm {
namespace {

std::vector<std::string> Symbols(const ByteLevelBpe& bpe, const std::string& word) {
  std::vector<std::string> out;
  for (int32_t id : bpe.Apply(word)) out.push_back(bpe.symbol(id));
  return out;
}

TEST(ByteToUnicodeTest, Gpt2Table) {
  EXPECT_EQ(ByteToUnicode('a'), U'a');
  EXPECT_EQ(ByteToUnicode('!'), U'!');
  EXPECT_EQ(ByteToUnicode(0xE9), U'\u00e9');
  EXPECT_EQ(ByteToUnicode(0x00), U'\u0100');
  EXPECT_EQ(ByteToUnicode(' '), U'\u0120');
  EXPECT_EQ(ByteToUnicode(0xAD), U'\u0143');  // the last non-printable byte
}

TEST(ByteLevelBpeTest, MergesByRankWithWordEnd) {
  const ByteLevelBpe bpe({{"l", "o"}, {"lo", "w</w>"}, {"e", "r</w>"}, {"lo", "w"}}, "</w>");
  using S = std::vector<std::string>;
  EXPECT_EQ(Symbols(bpe, "low"), (S{"low</w>"}));
  EXPECT_EQ(Symbols(bpe, "lower"), (S{"low", "er</w>"}));
  EXPECT_EQ(Symbols(bpe, "x"), (S{"x</w>"}));
  EXPECT_EQ(Symbols(bpe, "xyz"), (S{"x", "y", "z</w>"}));
  // A byte outside ASCII becomes its stand-in character.
  std::string e_acute;
  AppendUtf8(U'\u00c3', e_acute);
  EXPECT_EQ(Symbols(bpe, "\xC3"), (S{e_acute + "</w>"}));
}

// Expected values: CLIPTokenizer.bpe() of transformers 4.39 with the same merges.
TEST(ByteLevelBpeTest, RepeatedPairMergesLeftToRightWithoutOverlap) {
  const ByteLevelBpe bpe({{"a", "a"}, {"aa", "a</w>"}, {"aa", "aa"}}, "</w>");
  using S = std::vector<std::string>;
  EXPECT_EQ(Symbols(bpe, "aa"), (S{"a", "a</w>"}));
  EXPECT_EQ(Symbols(bpe, "aaa"), (S{"aaa</w>"}));
  EXPECT_EQ(Symbols(bpe, "aaaa"), (S{"aa", "a", "a</w>"}));
  EXPECT_EQ(Symbols(bpe, "aaaaa"), (S{"aa", "aaa</w>"}));
  EXPECT_EQ(Symbols(bpe, "aaaaaa"), (S{"aaaa", "a", "a</w>"}));
  EXPECT_EQ(Symbols(bpe, "aaaaaaa"), (S{"aaaa", "aaa</w>"}));
}

TEST(ByteLevelBpeTest, LongWordsStayFast) {
  const ByteLevelBpe bpe({{"a", "b"}, {"ab", "ab"}, {"abab", "abab"}}, "</w>");
  std::string word;
  for (int i = 0; i < 200000; ++i) word += "ab";
  const std::vector<int32_t> ids = bpe.Apply(word);
  // (a, b) everywhere but before "b</w>", then (ab, ab), then (abab, abab), each pass left to
  // right: "abababab" x 49999, "abab", "ab", "a", "b</w>".
  ASSERT_EQ(ids.size(), 50003u);
  EXPECT_EQ(bpe.symbol(ids[0]), "abababab");
  EXPECT_EQ(bpe.symbol(ids[49999]), "abab");
  EXPECT_EQ(bpe.symbol(ids[50000]), "ab");
  EXPECT_EQ(bpe.symbol(ids[50002]), "b</w>");
}

}  // namespace
}  // namespace tlcm
