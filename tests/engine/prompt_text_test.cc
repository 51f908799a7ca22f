// IsValidUtf8 and IsBlankText on the sequences clients send by mistake or on purpose.
#include "engine/prompt_text.h"

#include <string>

#include <gtest/gtest.h>

namespace tlcm::engine {
namespace {

TEST(PromptTextTest, WellFormedUtf8IsAccepted) {
  for (const std::string& text :
       {std::string(""), std::string("plain"), std::string("caf\u00e9"), std::string("\u732b"),
        std::string("\U0001f431"), std::string("\xf4\x8f\xbf\xbf") /* U+10FFFF */,
        std::string("nul\0inside", 10)}) {
    EXPECT_TRUE(IsValidUtf8(text)) << text;
  }
}

TEST(PromptTextTest, MalformedUtf8IsRejected) {
  for (const std::string text : {"\x80", "\xbf", "a\xc3", "\xe2\x82", "\xf0\x9f\x90",  // cut short
                                 "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",       // overlong
                                 "\xed\xa0\x80", "\xed\xbf\xbf",                       // surrogates
                                 "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xff",   // too large
                                 "\xc3\x28"}) {                                        // bad follow
    EXPECT_FALSE(IsValidUtf8(text)) << testing::PrintToString(text);
  }
}

TEST(PromptTextTest, OnlyWhiteSpaceAndInvisibleCharactersAreBlank) {
  EXPECT_TRUE(IsBlankText(""));
  EXPECT_TRUE(IsBlankText(" \t\n\v\f\r"));
  EXPECT_TRUE(IsBlankText("\u0085\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"));
  EXPECT_TRUE(IsBlankText("\u180e\u200b\u200c\u200d\u2060\ufeff"));
  EXPECT_FALSE(IsBlankText("\u3000x"));
  EXPECT_FALSE(IsBlankText("\u00b7"));  // a visible dot
  EXPECT_FALSE(IsBlankText("\xff"));    // not text at all: not blank either (IsValidUtf8 says no)
  EXPECT_FALSE(IsBlankText(std::string("\0", 1)));  // a control character that is not space
}

}  // namespace
}  // namespace tlcm::engine
