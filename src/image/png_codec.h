// PNG encoding and decoding of RGB images (libpng).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "image/rgb_image.h"

namespace tlcm {

// Encodes `image` as an 8-bit RGB PNG. InvalidArgument when the pixel buffer does not match
// width x height x 3.
absl::StatusOr<std::string> EncodePng(const RgbImage& image);

// Decodes a PNG (any bit depth / colour type) to 8-bit RGB; alpha is dropped. Errors name
// `what` (a path or "PNG data").
absl::StatusOr<RgbImage> DecodePng(const std::string& bytes, const std::string& what = "PNG data");

}  // namespace tlcm
