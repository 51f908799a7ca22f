#include "image/image_format.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "image/jpeg_codec.h"
#include "image/png_codec.h"
#include "image/png_writer.h"
#include "image/webp_codec.h"

namespace tlcm {

absl::string_view ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kWebp:
      return "webp";
  }
  return "unknown";
}

absl::StatusOr<ImageFormat> ParseImageFormat(absl::string_view name) {
  if (name == "png") return ImageFormat::kPng;
  if (name == "jpeg" || name == "jpg") return ImageFormat::kJpeg;
  if (name == "webp") return ImageFormat::kWebp;
  return absl::InvalidArgumentError(
      absl::StrCat("image format \"", name, "\" is not one of png, jpeg, webp"));
}

absl::StatusOr<std::string> EncodeImage(const RgbImage& image, ImageFormat format, int quality) {
  if (quality != 0 && (quality < kMinImageQuality || quality > kMaxImageQuality)) {
    return absl::InvalidArgumentError(absl::StrCat("quality ", quality, " is outside [",
                                                   kMinImageQuality, ", ", kMaxImageQuality,
                                                   "] (0 = default ", kDefaultImageQuality, ")"));
  }
  const int effective = quality == 0 ? kDefaultImageQuality : quality;
  switch (format) {
    case ImageFormat::kPng:
      return EncodePng(image);
    case ImageFormat::kJpeg:
      return EncodeJpeg(image, effective);
    case ImageFormat::kWebp:
      return EncodeWebp(image, effective);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("image format ", static_cast<int>(format), " is unknown"));
}

absl::StatusOr<RgbImage> DecodeImage(const std::string& bytes, const std::string& what) {
  const absl::string_view b(bytes);
  if (absl::StartsWith(b, "\x89PNG\r\n\x1a\n")) return DecodePng(bytes, what);
  if (absl::StartsWith(b, "\xff\xd8\xff")) return DecodeJpeg(bytes, what);
  if (b.size() >= 12 && absl::StartsWith(b, "RIFF") && b.substr(8, 4) == "WEBP") {
    return DecodeWebp(bytes, what);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": ", bytes.size(), " bytes that are not a PNG, JPEG or WebP picture"));
}

}  // namespace tlcm
