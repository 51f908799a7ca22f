#include "image/image_format.h"

#include "absl/strings/str_cat.h"
#include "image/jpeg_codec.h"
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

}  // namespace tlcm
