// Pillow's image operations that diffusers' VaeImageProcessor applies to input images, byte-exact:
// resizing with the Lanczos filter and conversion to grayscale. Torch-free.
#pragma once

#include <cstdint>
#include <vector>

#include "image/rgb_image.h"

namespace tlcm {

// An 8-bit image of `channels` interleaved channels per pixel, row-major.
struct Plane8 {
  int width = 0;
  int height = 0;
  int channels = 1;
  std::vector<uint8_t> bytes;  // width * height * channels
};

// Pillow's Image.resize((width, height), Image.LANCZOS) (support 3, no reducing gap; the pass
// order of Pillow 13): one pass per side that changes, each with filter weights in 22-bit fixed
// point and rounding as Pillow's 8-bit resampler; an image that keeps its size is returned as it
// is. width, height >= 1.
Plane8 ResizeLanczos(const Plane8& image, int width, int height);
RgbImage ResizeLanczos(const RgbImage& image, int width, int height);

// Pillow's convert("L") of an RGB image: (19595 R + 38470 G + 7471 B + 32768) >> 16 per pixel.
Plane8 ToGrayscale(const RgbImage& image);

}  // namespace tlcm
