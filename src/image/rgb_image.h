// An 8-bit RGB image in memory.
#pragma once

#include <cstdint>
#include <vector>

namespace tlcm {

// Row-major, 3 bytes per pixel (R, G, B), no padding between rows.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3 bytes
};

}  // namespace tlcm
