// JPEG encoding and decoding of RGB images (libjpeg-turbo through the libjpeg API).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "image/rgb_image.h"

namespace tlcm {

// Encodes `image` as a baseline 8-bit JPEG (YCbCr 4:2:0) at `quality` 1..100. InvalidArgument
// when the pixel buffer does not match width x height x 3, a side exceeds 65500 pixels or the
// quality is out of range; Internal when libjpeg fails. Thread-safe.
absl::StatusOr<std::string> EncodeJpeg(const RgbImage& image, int quality);

// Decodes a JPEG (greyscale or colour) to 8-bit RGB. InvalidArgument naming `what` (a path or
// "JPEG data") when the bytes are not a complete, valid JPEG. Thread-safe.
absl::StatusOr<RgbImage> DecodeJpeg(const std::string& bytes,
                                    const std::string& what = "JPEG data");

}  // namespace tlcm
