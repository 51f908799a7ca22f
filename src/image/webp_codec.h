// WebP encoding and decoding of RGB images (libwebp).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "image/rgb_image.h"

namespace tlcm {

// Encodes `image` as a lossy WebP at `quality` 1..100. InvalidArgument when the pixel buffer
// does not match width x height x 3, a side exceeds 16383 pixels or the quality is out of
// range; Internal when libwebp fails. Thread-safe.
absl::StatusOr<std::string> EncodeWebp(const RgbImage& image, int quality);

// Decodes a WebP (lossy or lossless; alpha is dropped) to 8-bit RGB. InvalidArgument naming
// `what` (a path or "WebP data") when the bytes are not a valid WebP. Thread-safe.
absl::StatusOr<RgbImage> DecodeWebp(const std::string& bytes,
                                    const std::string& what = "WebP data");

}  // namespace tlcm
