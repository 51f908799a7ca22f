// PNG / JPEG / WebP encoding: round trips through the libraries' own decoders, quality bounds,
// malformed pixel buffers and malformed encoded data.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "image/image_format.h"
#include "image/jpeg_codec.h"
#include "image/png_codec.h"
#include "image/webp_codec.h"

namespace tlcm {
namespace {

// A smooth colour gradient: lossy codecs reproduce it closely.
RgbImage Gradient(int width, int height) {
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &image.pixels[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>(255 * x / (width - 1));
      p[1] = static_cast<uint8_t>(255 * y / (height - 1));
      p[2] = static_cast<uint8_t>(128 + 64 * (x + y) / (width + height));
    }
  }
  return image;
}

double MeanAbsDiff(const RgbImage& a, const RgbImage& b) {
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(a.pixels[i] - b.pixels[i]);
  return sum / a.pixels.size();
}

TEST(JpegCodecTest, RoundTripKeepsSizeAndPixels) {
  const RgbImage image = Gradient(64, 48);
  auto bytes = EncodeJpeg(image, 95);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_GE(bytes->size(), 3u);
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[0]), 0xFF);  // SOI marker
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[1]), 0xD8);
  auto decoded = DecodeJpeg(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->width, 64);
  EXPECT_EQ(decoded->height, 48);
  ASSERT_EQ(decoded->pixels.size(), image.pixels.size());
  EXPECT_LT(MeanAbsDiff(image, *decoded), 3.0);  // quality 95 on a smooth gradient
}

TEST(JpegCodecTest, LowerQualityGivesSmallerFiles) {
  const RgbImage image = Gradient(128, 128);
  auto low = EncodeJpeg(image, 10);
  auto high = EncodeJpeg(image, 100);
  ASSERT_TRUE(low.ok() && high.ok());
  EXPECT_LT(low->size(), high->size());
}

TEST(JpegCodecTest, QualityBounds) {
  const RgbImage image = Gradient(16, 16);
  EXPECT_TRUE(EncodeJpeg(image, 1).ok());
  EXPECT_TRUE(EncodeJpeg(image, 100).ok());
  for (int quality : {0, -5, 101}) {
    auto bytes = EncodeJpeg(image, quality);
    EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument) << quality;
    EXPECT_NE(bytes.status().message().find("quality"), std::string::npos);
  }
}

TEST(JpegCodecTest, RejectsBadPixelBuffers) {
  RgbImage short_buffer = Gradient(16, 16);
  short_buffer.pixels.pop_back();
  EXPECT_EQ(EncodeJpeg(short_buffer, 90).status().code(), absl::StatusCode::kInvalidArgument);
  RgbImage empty;
  EXPECT_EQ(EncodeJpeg(empty, 90).status().code(), absl::StatusCode::kInvalidArgument);
  RgbImage too_wide;
  too_wide.width = 65501;
  too_wide.height = 1;
  too_wide.pixels.resize(65501 * 3);
  EXPECT_EQ(EncodeJpeg(too_wide, 90).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JpegCodecTest, RejectsBadEncodedData) {
  EXPECT_EQ(DecodeJpeg("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeJpeg("definitely not a jpeg").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto bytes = EncodeJpeg(Gradient(64, 64), 90);
  ASSERT_TRUE(bytes.ok());
  auto truncated = DecodeJpeg(bytes->substr(0, bytes->size() / 2), "half.jpg");
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(truncated.status().message().find("half.jpg"), std::string::npos);
}

// A few bytes can declare a huge image; the decoders refuse it before allocating (found by
// tests/fuzz/image_decode_fuzz; the same files are in its corpus).
TEST(ImageDecodeTest, RefusesHugeDeclaredSizes) {
  // A valid 38-byte lossless WebP of one colour, 16383 x 16383 (805 MB decoded).
  const std::string webp(
      "\x52\x49\x46\x46\x1e\x00\x00\x00\x57\x45\x42\x50\x56\x50\x38\x4c\x11\x00\x00"
      "\x00\x2f\xfe\xbf\xff\x0f\x07\x50\x85\x22\x57\xa1\xff\x81\x88\xe8\x7f\x00\x00",
      38);
  auto decoded_webp = DecodeWebp(webp, "huge.webp");
  EXPECT_EQ(decoded_webp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded_webp.status().message().find("huge.webp: 16383x16383 WebP exceeds"),
            std::string::npos)
      << decoded_webp.status();
  // A PNG header declaring 30000 x 30000 RGB (2.7 GB decoded) over a few bytes of IDAT.
  const std::string png(
      "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x75"
      "\x30\x00\x00\x75\x30\x08\x02\x00\x00\x00\xe9\x45\x6f\xed\x00\x00\x00\x0b\x49"
      "\x44\x41\x54\x78\x9c\x63\x60\xc0\x0b\x00\x00\x1f\x00\x01\x80\xfd\x43\xda\x00"
      "\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
      68);
  auto decoded_png = DecodePng(png, "huge.png");
  EXPECT_EQ(decoded_png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded_png.status().message().find("huge.png: 30000x30000 PNG exceeds"),
            std::string::npos)
      << decoded_png.status();
  // The same through DecodeImage, which tells the formats apart by their signature.
  EXPECT_NE(DecodeImage(webp, "image").status().message().find("image: 16383x16383 WebP exceeds"),
            std::string::npos);
  EXPECT_NE(DecodeImage(png, "mask").status().message().find("mask: 30000x30000 PNG exceeds"),
            std::string::npos);
}

TEST(ImageDecodeTest, DecodeImageTellsFormatsApart) {
  const RgbImage image = Gradient(16, 8);
  for (ImageFormat format : {ImageFormat::kPng, ImageFormat::kJpeg, ImageFormat::kWebp}) {
    auto bytes = EncodeImage(image, format, 95);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    auto decoded = DecodeImage(*bytes, "image");
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->width, 16);
    EXPECT_EQ(decoded->height, 8);
  }
  auto png = EncodeImage(image, ImageFormat::kPng, 0);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(DecodeImage(*png, "image")->pixels, image.pixels);
  for (const std::string& bytes :
       {std::string("GIF89a\x01\x00\x01\x00"), std::string(), png->substr(0, 20)}) {
    auto decoded = DecodeImage(bytes, "mask");
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(decoded.status().message().substr(0, 6), "mask: ") << decoded.status();
  }
}

TEST(WebpCodecTest, RoundTripKeepsSizeAndPixels) {
  const RgbImage image = Gradient(64, 48);
  auto bytes = EncodeWebp(image, 95);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_GE(bytes->size(), 12u);
  EXPECT_EQ(bytes->substr(0, 4), "RIFF");
  EXPECT_EQ(bytes->substr(8, 4), "WEBP");
  auto decoded = DecodeWebp(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->width, 64);
  EXPECT_EQ(decoded->height, 48);
  ASSERT_EQ(decoded->pixels.size(), image.pixels.size());
  EXPECT_LT(MeanAbsDiff(image, *decoded), 4.0);  // lossy, 4:2:0 chroma
}

TEST(WebpCodecTest, LowerQualityGivesSmallerFiles) {
  const RgbImage image = Gradient(128, 128);
  auto low = EncodeWebp(image, 5);
  auto high = EncodeWebp(image, 100);
  ASSERT_TRUE(low.ok() && high.ok());
  EXPECT_LT(low->size(), high->size());
}

TEST(WebpCodecTest, QualityBounds) {
  const RgbImage image = Gradient(16, 16);
  EXPECT_TRUE(EncodeWebp(image, 1).ok());
  EXPECT_TRUE(EncodeWebp(image, 100).ok());
  for (int quality : {0, -1, 101}) {
    EXPECT_EQ(EncodeWebp(image, quality).status().code(), absl::StatusCode::kInvalidArgument)
        << quality;
  }
}

TEST(WebpCodecTest, RejectsBadPixelBuffers) {
  RgbImage long_buffer = Gradient(16, 16);
  long_buffer.pixels.push_back(0);
  EXPECT_EQ(EncodeWebp(long_buffer, 90).status().code(), absl::StatusCode::kInvalidArgument);
  RgbImage too_tall;
  too_tall.width = 1;
  too_tall.height = 16384;
  too_tall.pixels.resize(16384 * 3);
  EXPECT_EQ(EncodeWebp(too_tall, 90).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WebpCodecTest, RejectsBadEncodedData) {
  EXPECT_EQ(DecodeWebp("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeWebp(std::string("RIFF\x10\0\0\0WEBPjunk", 16)).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto bytes = EncodeWebp(Gradient(64, 64), 90);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(DecodeWebp(bytes->substr(0, bytes->size() / 2)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageFormatTest, NamesRoundTrip) {
  for (ImageFormat format : {ImageFormat::kPng, ImageFormat::kJpeg, ImageFormat::kWebp}) {
    auto parsed = ParseImageFormat(ImageFormatName(format));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, format);
  }
  EXPECT_EQ(*ParseImageFormat("jpg"), ImageFormat::kJpeg);
  EXPECT_EQ(ParseImageFormat("gif").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ImageFormatTest, EncodeImageDispatchesToEachCodec) {
  const RgbImage image = Gradient(32, 32);
  auto png = EncodeImage(image, ImageFormat::kPng, 0);
  ASSERT_TRUE(png.ok());
  auto png_decoded = DecodePng(*png);
  ASSERT_TRUE(png_decoded.ok());
  EXPECT_EQ(png_decoded->pixels, image.pixels);  // lossless

  auto jpeg = EncodeImage(image, ImageFormat::kJpeg, 70);
  ASSERT_TRUE(jpeg.ok());
  EXPECT_EQ(*jpeg, *EncodeJpeg(image, 70));

  auto webp = EncodeImage(image, ImageFormat::kWebp, 70);
  ASSERT_TRUE(webp.ok());
  EXPECT_EQ(*webp, *EncodeWebp(image, 70));
}

TEST(ImageFormatTest, QualityZeroMeansTheDefault) {
  const RgbImage image = Gradient(32, 32);
  EXPECT_EQ(*EncodeImage(image, ImageFormat::kJpeg, 0), *EncodeJpeg(image, kDefaultImageQuality));
  EXPECT_EQ(*EncodeImage(image, ImageFormat::kWebp, 0), *EncodeWebp(image, kDefaultImageQuality));
}

TEST(ImageFormatTest, QualityOutOfRangeIsRejectedForEveryFormat) {
  const RgbImage image = Gradient(8, 8);
  for (ImageFormat format : {ImageFormat::kPng, ImageFormat::kJpeg, ImageFormat::kWebp}) {
    for (int quality : {-1, 101}) {
      EXPECT_EQ(EncodeImage(image, format, quality).status().code(),
                absl::StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace tlcm
