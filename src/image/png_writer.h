// Our own PNG encoder, built for speed: a 1024x1024 image in under 10 ms on one core of the
// development VM, at up to a few percent more bytes than libpng's default compression
// (docs/performance.md, "Image encoding"; bench/image_bench measures both).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "image/rgb_image.h"

namespace tlcm {

// Encodes `image` as a standard PNG: 8-bit RGB, not interlaced, every row filtered with "Up"
// (filter type 2), the filtered rows compressed by ZlibCompressFast (deflate_fast.h) and sent in
// IDAT chunks of at most 1 MiB, each chunk with its CRC-32. Every PNG decoder returns exactly
// `image.pixels`. InvalidArgument when the pixel buffer does not match width x height x 3.
// Thread-safe: no state is shared between calls.
absl::StatusOr<std::string> EncodePng(const RgbImage& image);

}  // namespace tlcm
