// PNG through libpng: decoding, and libpng's own encoder (the reference that png_writer.h's
// faster EncodePng is measured against).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "image/rgb_image.h"

namespace tlcm {

// Encodes `image` as an 8-bit RGB PNG with libpng's defaults (zlib level 6, adaptive filters):
// a few percent smaller than EncodePng's output and 10-40x slower. The benchmark's baseline.
// InvalidArgument when the pixel buffer does not match width x height x 3.
absl::StatusOr<std::string> EncodePngLibpng(const RgbImage& image);

// Decodes a PNG (any bit depth / colour type) to 8-bit RGB; alpha is dropped. Errors name
// `what` (a path or "PNG data").
absl::StatusOr<RgbImage> DecodePng(const std::string& bytes, const std::string& what = "PNG data");

}  // namespace tlcm
