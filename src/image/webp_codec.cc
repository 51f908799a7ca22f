#include "image/webp_codec.h"

#include <webp/decode.h>
#include <webp/encode.h>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace tlcm {

absl::StatusOr<std::string> EncodeWebp(const RgbImage& image, int quality) {
  TLCM_RETURN_IF_ERROR(CheckRgbImage(image, "EncodeWebp"));
  if (image.width > WEBP_MAX_DIMENSION || image.height > WEBP_MAX_DIMENSION) {
    return absl::InvalidArgumentError(absl::StrCat("EncodeWebp: ", image.width, "x", image.height,
                                                   " exceeds WebP's limit of ", WEBP_MAX_DIMENSION,
                                                   " pixels per side"));
  }
  if (quality < 1 || quality > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("EncodeWebp: quality ", quality, " is outside [1, 100]"));
  }
  uint8_t* buffer = nullptr;
  const size_t size = WebPEncodeRGB(image.pixels.data(), image.width, image.height, image.width * 3,
                                    static_cast<float>(quality), &buffer);
  if (size == 0) {
    WebPFree(buffer);
    return absl::InternalError("EncodeWebp: libwebp failed to encode");
  }
  std::string out(reinterpret_cast<const char*>(buffer), size);
  WebPFree(buffer);
  return out;
}

absl::StatusOr<RgbImage> DecodeWebp(const std::string& bytes, const std::string& what) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  int width = 0, height = 0;
  if (!WebPGetInfo(data, bytes.size(), &width, &height)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a WebP"));
  }
  if (static_cast<int64_t>(width) * height > kMaxDecodedPixels) {
    return DecodedSizeError(what, "WebP", width, height);
  }
  uint8_t* pixels = WebPDecodeRGB(data, bytes.size(), &width, &height);
  if (pixels == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": corrupt WebP"));
  }
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.assign(pixels, pixels + static_cast<size_t>(width) * height * 3);
  WebPFree(pixels);
  return image;
}

}  // namespace tlcm
