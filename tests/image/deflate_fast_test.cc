// ZlibCompressFast: every output inflates with zlib to the input (zlib checks the header and the
// Adler-32 too), runs and stored blocks are used where they pay, and the size bound holds.
#include "image/deflate_fast.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>
#include <vector>

namespace tlcm {
namespace {

std::vector<uint8_t> Inflate(const std::string& stream, size_t expected_size) {
  std::vector<uint8_t> out(expected_size + 1);  // one spare byte: longer output is caught
  uLongf size = out.size();
  const int result =
      uncompress(out.data(), &size, reinterpret_cast<const Bytef*>(stream.data()), stream.size());
  EXPECT_EQ(result, Z_OK);
  out.resize(result == Z_OK ? size : 0);
  return out;
}

size_t Bound(size_t size) {
  const size_t blocks = std::max<size_t>(1, (size + kDeflateBlockBytes - 1) / kDeflateBlockBytes);
  return size + 6 * blocks + 7;
}

void ExpectRoundTrip(const std::vector<uint8_t>& data) {
  const std::string stream = ZlibCompressFast(data.data(), data.size());
  EXPECT_LE(stream.size(), Bound(data.size()));
  EXPECT_EQ(Inflate(stream, data.size()), data) << data.size() << " bytes";
}

std::vector<uint8_t> RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> data(size);
  for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
  return data;
}

TEST(DeflateFastTest, EmptyAndTinyInputs) {
  ExpectRoundTrip({});
  ExpectRoundTrip({42});
  ExpectRoundTrip({0, 0});
  ExpectRoundTrip({7, 7, 7, 7, 7, 7});
}

TEST(DeflateFastTest, RandomDataFallsBackToStoredBlocks) {
  for (size_t size : {size_t{100}, kDeflateBlockBytes, kDeflateBlockBytes + 1, size_t{1} << 20}) {
    const std::vector<uint8_t> data = RandomBytes(size, 7);
    ExpectRoundTrip(data);
  }
}

TEST(DeflateFastTest, FlatDataCompressesThroughRuns) {
  const std::vector<uint8_t> zeros(3 * kDeflateBlockBytes + 11, 0);
  ExpectRoundTrip(zeros);
  // ~1 bit per 258 bytes plus code tables: Huffman-only coding would need >= 1 bit per byte.
  EXPECT_LT(ZlibCompressFast(zeros.data(), zeros.size()).size(), zeros.size() / 100);
}

TEST(DeflateFastTest, RunsOfEveryLengthAndAtBlockEdges) {
  std::vector<uint8_t> data;
  std::mt19937 rng(3);
  for (size_t length = 1; length <= 600; ++length) {  // every length code and its extra bits
    data.insert(data.end(), length, static_cast<uint8_t>(rng() % 5));
    data.push_back(static_cast<uint8_t>(rng()));
  }
  ExpectRoundTrip(data);
  // A run across the first block boundary, and one that ends the data.
  std::vector<uint8_t> edges = RandomBytes(2 * kDeflateBlockBytes + 300, 5);
  std::fill(edges.begin() + kDeflateBlockBytes - 100, edges.begin() + kDeflateBlockBytes + 100, 9);
  std::fill(edges.end() - 200, edges.end(), 4);
  ExpectRoundTrip(edges);
}

TEST(DeflateFastTest, SkewedTextLikeData) {
  std::mt19937 rng(11);
  std::geometric_distribution<int> small(0.3);
  std::vector<uint8_t> data(5 * kDeflateBlockBytes / 2);
  for (uint8_t& b : data) b = static_cast<uint8_t>(std::min(small(rng), 255));
  ExpectRoundTrip(data);
  EXPECT_LT(ZlibCompressFast(data.data(), data.size()).size(), data.size() / 2);
}

}  // namespace
}  // namespace tlcm
