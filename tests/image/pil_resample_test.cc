// Pillow's Lanczos resize and grayscale conversion, byte for byte against Pillow's own output
// (tests/data/image-inputs/resize, made by tools/make_image_input_goldens.py).
#include "image/pil_resample.h"

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "image/png_codec.h"
#include "tests/test_data_path.h"

namespace tlcm {
namespace {

using ::tlcm::testing::DataPath;

RgbImage ReadPng(const std::string& relative) {
  std::ifstream in(DataPath(relative), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  auto image = DecodePng(bytes.str(), relative);
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *image : RgbImage{};
}

TEST(PilResampleTest, MatchesPillowByteForByte) {
  std::ifstream in(DataPath("image-inputs/resize/cases.json"));
  ASSERT_TRUE(in.good());
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 8u);
  for (const auto& c : cases) {
    const std::string name = c.at("output");
    SCOPED_TRACE(name);
    const RgbImage source = ReadPng("image-inputs/resize/" + c.at("input").get<std::string>());
    const RgbImage expected = ReadPng("image-inputs/resize/" + name);
    const int width = c.at("width"), height = c.at("height");
    ASSERT_EQ(expected.width, width);
    ASSERT_EQ(expected.height, height);
    if (c.at("mode") == "RGB") {
      const RgbImage actual = ResizeLanczos(source, width, height);
      ASSERT_EQ(actual.width, width);
      ASSERT_EQ(actual.height, height);
      EXPECT_EQ(actual.pixels, expected.pixels);
    } else {
      const Plane8 actual = ResizeLanczos(ToGrayscale(source), width, height);
      ASSERT_EQ(actual.channels, 1);
      // The golden stores the gray result as RGB with three equal channels.
      std::vector<uint8_t> gray;
      for (size_t i = 0; i < expected.pixels.size(); i += 3) gray.push_back(expected.pixels[i]);
      EXPECT_EQ(actual.bytes, gray);
    }
  }
}

TEST(PilResampleTest, SameSizeIsACopy) {
  RgbImage image{2, 1, {1, 2, 3, 250, 251, 252}};
  EXPECT_EQ(ResizeLanczos(image, 2, 1).pixels, image.pixels);
}

TEST(PilResampleTest, GrayscaleWeights) {
  // Pillow's L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
  const RgbImage image{4, 1, {255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50}};
  EXPECT_EQ(ToGrayscale(image).bytes, (std::vector<uint8_t>{76, 150, 29, 124}));
}

}  // namespace
}  // namespace tlcm
