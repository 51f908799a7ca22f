#include "image/png_codec.h"

#include <png.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace tlcm {

absl::StatusOr<std::string> EncodePngLibpng(const RgbImage& image) {
  TLCM_RETURN_IF_ERROR(CheckRgbImage(image, "EncodePngLibpng"));
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = PNG_FORMAT_RGB;
  // One compression pass into a buffer of libpng's worst-case size (asking for the size first
  // compresses the whole image twice: 2x the time).
  png_alloc_size_t size = PNG_IMAGE_PNG_SIZE_MAX(png);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, out.data(), &size, 0, image.pixels.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat("EncodePngLibpng: ", png.message));
  }
  out.resize(size);
  return out;
}

absl::StatusOr<RgbImage> DecodePng(const std::string& bytes, const std::string& what) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a PNG: ", png.message));
  }
  if (static_cast<int64_t>(png.width) * png.height > kMaxDecodedPixels) {
    png_image_free(&png);
    return DecodedSizeError(what, "PNG", png.width, png.height);
  }
  png.format = PNG_FORMAT_RGB;
  RgbImage image;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  image.pixels.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": corrupt PNG: ", png.message));
  }
  return image;
}

}  // namespace tlcm
