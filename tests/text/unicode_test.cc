// NFC, Python-style lower-casing and character classes against values Python 3.11 gives
// (unicodedata.normalize("NFC", s), s.lower()).
#include <string>

#include <gtest/gtest.h>

#include "text/clip_pretokenizer.h"
#include "text/unicode_nfc.h"
#include "text/unicode_props.h"
#include "text/unicode_tables.h"

namespace tlcm {
namespace {

namespace ud = unicode_data;

TEST(UnicodeTablesTest, ReflectsPython311sUnicode14) {
  EXPECT_STREQ(ud::kUnicodeVersion, "14.0.0");
}

TEST(NfcTest, ComposesReordersAndKeepsStableText) {
  EXPECT_EQ(NfcNormalize(U"plain ascii"), U"plain ascii");
  EXPECT_EQ(NfcNormalize(U"cafe\u0301"), U"caf\u00e9");
  EXPECT_EQ(NfcNormalize(U"\u212b"), U"\u00c5");               // singleton decomposition
  EXPECT_EQ(NfcNormalize(U"\u2126"), U"\u03a9");               // ohm sign -> omega
  EXPECT_EQ(NfcNormalize(U"q\u0303"), U"q\u0303");             // no precomposed form
  EXPECT_EQ(NfcNormalize(U"e\u0301\u0327"), U"\u0229\u0301");  // reordered: cedilla (202) first
  EXPECT_EQ(NfcNormalize(U"d\u0307\u0323"), U"\u1e0d\u0307");  // dot below composes first
  EXPECT_EQ(NfcNormalize(U"a\u0301\u0301"), U"\u00e1\u0301");  // second acute blocked
  EXPECT_EQ(NfcNormalize(U"\u0958"), U"\u0915\u093c");         // composition exclusion
  EXPECT_EQ(NfcNormalize(U"\u1100\u1161\u11a8"), U"\uac01");   // Hangul L V T
  EXPECT_EQ(NfcNormalize(U"\uac00\u11a8"), U"\uac01");         // LV + T
  EXPECT_EQ(NfcNormalize(U"\u0344"), U"\u0308\u0301");         // non-starter decomposition
  EXPECT_EQ(NfcNormalize(U"\uf900"), U"\u8c48");               // CJK compatibility ideograph
  EXPECT_EQ(NfcNormalize(U"\u0301a"), U"\u0301a");             // leading non-starter
}

TEST(PythonLowerTest, FullMappingAndFinalSigma) {
  EXPECT_EQ(PythonLower(U"HeLLo ÀÉ"), U"hello àé");
  EXPECT_EQ(PythonLower(U"\u0130"), U"i\u0307");  // İ -> i + combining dot above
  EXPECT_EQ(PythonLower(U"\u212a"), U"k");        // Kelvin sign
  EXPECT_EQ(PythonLower(U"\u03a3"), U"\u03c3");   // alone: not final
  EXPECT_EQ(PythonLower(U"\u039f\u0394\u039f\u03a3"), U"\u03bf\u03b4\u03bf\u03c2");
  EXPECT_EQ(PythonLower(U"\u0391\u03a3\u0391"), U"\u03b1\u03c3\u03b1");
  EXPECT_EQ(PythonLower(U"\u0391\u03a3'"), U"\u03b1\u03c2'");              // ' is case-ignorable
  EXPECT_EQ(PythonLower(U"\u0391\u03a3'\u0391"), U"\u03b1\u03c3'\u03b1");  // cased after it
  EXPECT_EQ(PythonLower(U"1\u03a3"), U"1\u03c3");                          // nothing cased before
  EXPECT_EQ(PythonLower(U"\u01c5"), U"\u01c6");                            // title case
}

TEST(UnicodeFlagsTest, ClassesAsPythonSeesThem) {
  EXPECT_TRUE(HasUnicodeFlag(U'\t', ud::kBertSpace));
  EXPECT_FALSE(HasUnicodeFlag(U'\t', ud::kDrop));
  EXPECT_TRUE(HasUnicodeFlag(0x0B, ud::kDrop));    // vertical tab: Cc, dropped
  EXPECT_TRUE(HasUnicodeFlag(0x200B, ud::kDrop));  // zero width space: Cf
  EXPECT_TRUE(HasUnicodeFlag(0xE000, ud::kDrop));  // private use
  EXPECT_TRUE(HasUnicodeFlag(0x0378, ud::kDrop));  // unassigned in Unicode 14
  EXPECT_TRUE(HasUnicodeFlag(0xFFFD, ud::kDrop));
  EXPECT_TRUE(HasUnicodeFlag(0x3000, ud::kBertSpace));
  EXPECT_FALSE(HasUnicodeFlag(0x2028, ud::kBertSpace));  // Zl: kept by _clean_text...
  EXPECT_TRUE(HasUnicodeFlag(0x2028, ud::kPySpace));     // ...but str.split() splits on it
  EXPECT_TRUE(HasUnicodeFlag(U'x', ud::kReLetter));
  EXPECT_TRUE(HasUnicodeFlag(U'7', ud::kReNumber));
  EXPECT_TRUE(HasUnicodeFlag(U'!', ud::kReOther));
  EXPECT_EQ(UnicodeFlags(0x0345) & (ud::kReLetter | ud::kReNumber | ud::kReOther), 0);
  EXPECT_EQ(UnicodeFlags(0x110000), 0);
  EXPECT_EQ(FoldForLiteral(0x017F), U's');
  EXPECT_EQ(FoldForLiteral(U'S'), U's');
  EXPECT_EQ(FoldForLiteral(U'k'), U'k');
}

TEST(ClipPreTokenizerTest, SplitsLikeTheSlowTokenizer) {
  using Words = std::vector<std::string>;
  EXPECT_EQ(ClipPreTokenize(U"A Photo, of 42 cats!!"),
            (Words{"a", "photo", ",", "of", "4", "2", "cats", "!!"}));
  EXPECT_EQ(ClipPreTokenize(U"it's we'RE"), (Words{"it", "'s", "we", "'re"}));
  EXPECT_EQ(ClipPreTokenize(U"it'\u017f"), (Words{"it", "'\u017f"}));  // IGNORECASE: ſ matches s
  EXPECT_EQ(ClipPreTokenize(U"x\u0345y"), (Words{"x", "y"}));          // U+0345 matches nothing
  EXPECT_EQ(ClipPreTokenize(U"<|ENDOFTEXT|>"), (Words{"<|endoftext|>"}));
  EXPECT_EQ(ClipPreTokenize(U"!<|endoftext|>"), (Words{"!<|", "endoftext", "|>"}));
  EXPECT_EQ(ClipPreTokenize(U"\u65e5\u672c\u8a9e"), (Words{"\u65e5", "\u672c", "\u8a9e"}));
  EXPECT_EQ(ClipPreTokenize(U"a\u200bb\x0b c\u2028d"), (Words{"ab", "c", "d"}));
  EXPECT_TRUE(ClipPreTokenize(U" \t\n\u0000").empty());
}

}  // namespace
}  // namespace tlcm
