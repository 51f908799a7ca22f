// TruncateClientText and QuoteClientText: bounded, escaped, cut at character boundaries.
#include "util/client_text.h"

#include <string>

#include <gtest/gtest.h>

namespace tlcm {
namespace {

TEST(ClientTextTest, ShortTextIsKeptWhole) {
  EXPECT_EQ(TruncateClientText("sdxl"), "sdxl");
  EXPECT_EQ(QuoteClientText("sdxl"), "\"sdxl\"");
  EXPECT_EQ(TruncateClientText(std::string(64, 'a')), std::string(64, 'a'));
}

TEST(ClientTextTest, LongTextIsCutWithItsLength) {
  EXPECT_EQ(TruncateClientText(std::string(100, 'a'), 8), "aaaaaaaa...(100 bytes)");
  EXPECT_EQ(QuoteClientText(std::string(100, 'a'), 8), "\"aaaaaaaa\"...(100 bytes)");
}

TEST(ClientTextTest, ACutNeverSplitsAUtf8Character) {
  // "ab" + U+732B (3 bytes): a cut after 3 or 4 bytes drops the whole character.
  const std::string text =
      "ab\xe7\x8c\xab"
      "cdefgh";
  EXPECT_EQ(TruncateClientText(text, 3), "ab...(11 bytes)");
  EXPECT_EQ(TruncateClientText(text, 4), "ab...(11 bytes)");
  EXPECT_EQ(TruncateClientText(text, 5), "ab\xe7\x8c\xab...(11 bytes)");
  // Bytes that are not UTF-8 are cut where the limit falls.
  EXPECT_EQ(TruncateClientText(std::string(10, '\x80'), 4),
            std::string(4, '\x80') + "...(10 bytes)");
}

TEST(ClientTextTest, QuotingEscapesWhatCouldBreakAMessage) {
  EXPECT_EQ(QuoteClientText("a\"b\\c\nd\x01\xff"), "\"a\\\"b\\\\c\\nd\\x01\\xff\"");
}

}  // namespace
}  // namespace tlcm
