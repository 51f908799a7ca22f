// Huffman code construction: length limits, completeness (zlib rejects incomplete codes),
// optimality on small cases, and RFC 1951's canonical code assignment.
#include "image/huffman_code.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace tlcm {
namespace {

// Kraft sum of the used lengths in units of 2^-15: 32768 means a complete code.
uint64_t KraftSum(const std::vector<uint8_t>& lengths) {
  uint64_t sum = 0;
  for (uint8_t len : lengths) {
    if (len != 0) sum += uint64_t{1} << (15 - len);
  }
  return sum;
}

void ExpectValidCode(const std::vector<uint32_t>& counts, int max_length) {
  const std::vector<uint8_t> lengths = HuffmanCodeLengths(counts, max_length);
  ASSERT_EQ(lengths.size(), counts.size());
  EXPECT_EQ(KraftSum(lengths), 32768u);
  for (size_t s = 0; s < counts.size(); ++s) {
    EXPECT_LE(lengths[s], max_length) << s;
    if (counts[s] > 0) {
      EXPECT_GT(lengths[s], 0) << s;
    }
    // A more frequent symbol never gets a longer code.
    for (size_t t = 0; t < counts.size(); ++t) {
      if (counts[s] > counts[t] && counts[t] > 0) {
        EXPECT_LE(lengths[s], lengths[t]) << s << " " << t;
      }
    }
  }
}

TEST(HuffmanCodeTest, OptimalLengthsOnASmallCase) {
  EXPECT_EQ(HuffmanCodeLengths({1, 1, 2, 4}, 15), (std::vector<uint8_t>{3, 3, 2, 1}));
  EXPECT_EQ(HuffmanCodeLengths({5, 5, 5, 5}, 15), (std::vector<uint8_t>{2, 2, 2, 2}));
  EXPECT_EQ(HuffmanCodeLengths({0, 7, 0, 3, 3}, 15), (std::vector<uint8_t>{0, 1, 0, 2, 2}));
}

TEST(HuffmanCodeTest, FewerThanTwoSymbolsStillMakeACompleteCode) {
  EXPECT_EQ(HuffmanCodeLengths({0, 0, 0}, 7), (std::vector<uint8_t>{1, 1, 0}));
  EXPECT_EQ(HuffmanCodeLengths({0, 0, 9}, 7), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(HuffmanCodeLengths({9, 0, 0}, 7), (std::vector<uint8_t>{1, 1, 0}));
}

TEST(HuffmanCodeTest, DeepTreesAreCutToTheLimitAndStayComplete) {
  // Fibonacci counts make the deepest possible Huffman tree (depth = symbols - 1).
  std::vector<uint32_t> fibonacci(30);
  fibonacci[0] = fibonacci[1] = 1;
  for (size_t i = 2; i < fibonacci.size(); ++i) fibonacci[i] = fibonacci[i - 1] + fibonacci[i - 2];
  ExpectValidCode(fibonacci, 15);
  ExpectValidCode(fibonacci, 7);
  std::vector<uint32_t> code_length_alphabet(fibonacci.begin(), fibonacci.begin() + 19);
  ExpectValidCode(code_length_alphabet, 7);
  const std::vector<uint8_t> lengths = HuffmanCodeLengths(fibonacci, 15);
  EXPECT_EQ(*std::max_element(lengths.begin(), lengths.end()), 15);
}

TEST(HuffmanCodeTest, ManySymbolsAtTheLimit) {
  std::vector<uint32_t> uniform(286, 10);
  ExpectValidCode(uniform, 15);
  std::vector<uint32_t> skewed(286, 1);
  skewed[0] = 1000000;
  skewed[7] = 50000;
  ExpectValidCode(skewed, 15);
  std::vector<uint32_t> all_used(128, 1);  // exactly fills 2^7 codes of length 7
  ExpectValidCode(all_used, 7);
}

TEST(HuffmanCodeTest, CanonicalCodesFollowRfc1951) {
  // RFC 1951, section 3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give codes 010, 011, 100, 101,
  // 110, 00, 1110, 1111; ours are bit-reversed for least-significant-bit-first output.
  const std::vector<uint16_t> codes = CanonicalCodes({3, 3, 3, 3, 3, 2, 4, 4});
  EXPECT_EQ(codes,
            (std::vector<uint16_t>{0b010, 0b110, 0b001, 0b101, 0b011, 0b00, 0b0111, 0b1111}));
  EXPECT_EQ(CanonicalCodes({0, 1, 0, 1}), (std::vector<uint16_t>{0, 0, 0, 1}));
}

}  // namespace
}  // namespace tlcm
