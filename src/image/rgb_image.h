// An 8-bit RGB image in memory.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tlcm {

// Row-major, 3 bytes per pixel (R, G, B), no padding between rows.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3 bytes
};

// The decoders (PNG, JPEG, WebP) refuse images of more pixels than this before allocating
// them: a few bytes of client input can declare a huge image (a 38-byte lossless WebP decodes
// to 16383 x 16383, 805 MB).
inline constexpr int64_t kMaxDecodedPixels = int64_t{1} << 26;  // 64 Mpixel

// The decoders' InvalidArgument for an image above kMaxDecodedPixels, naming `what` (a path or
// "<format> data") and the size.
inline absl::Status DecodedSizeError(absl::string_view what, absl::string_view format,
                                     int64_t width, int64_t height) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", width, "x", height, " ", format,
                                                 " exceeds the decoder's limit of ",
                                                 kMaxDecodedPixels, " pixels"));
}

// OK when both sides are positive and `image.pixels` holds exactly width x height x 3 bytes;
// otherwise InvalidArgument starting with `who` (the encoder's name).
inline absl::Status CheckRgbImage(const RgbImage& image, absl::string_view who) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", image.pixels.size(),
                                                   " bytes do not make a ", image.width, "x",
                                                   image.height, " RGB image"));
  }
  return absl::OkStatus();
}

}  // namespace tlcm
