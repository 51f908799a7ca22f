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
