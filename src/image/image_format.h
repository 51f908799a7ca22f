// The image formats the service can return, and one entry point that encodes an RGB image into
// any of them. Torch-free.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "image/rgb_image.h"

namespace tlcm {

enum class ImageFormat { kPng, kJpeg, kWebp };

// Quality bounds for the lossy formats (JPEG, WebP). PNG is lossless and ignores quality.
inline constexpr int kMinImageQuality = 1;
inline constexpr int kMaxImageQuality = 100;
// What quality 0 ("unset") means for JPEG and WebP.
inline constexpr int kDefaultImageQuality = 90;

// "png", "jpeg", "webp".
absl::string_view ImageFormatName(ImageFormat format);

// Inverse of ImageFormatName; also accepts "jpg". Case-sensitive. InvalidArgument otherwise.
absl::StatusOr<ImageFormat> ParseImageFormat(absl::string_view name);

// Encodes `image` as `format`. `quality`: 0 = kDefaultImageQuality, else kMinImageQuality..
// kMaxImageQuality (JPEG / WebP); PNG ignores it. Errors: InvalidArgument when the pixel buffer
// does not match width x height x 3, the quality is out of range or the size exceeds the format's
// limit (JPEG 65500, WebP 16383 pixels per side); Internal when the codec library fails.
// Thread-safe (no shared state).
absl::StatusOr<std::string> EncodeImage(const RgbImage& image, ImageFormat format, int quality);

// Decodes PNG, JPEG or WebP bytes, told apart by their signature, to 8-bit RGB (alpha dropped).
// The decoders read the declared size first and refuse more than kMaxDecodedPixels before
// allocating (a small file claiming a huge picture). InvalidArgument starting with `what` (a
// field name or a path) for anything else or undecodable data. Thread-safe.
absl::StatusOr<RgbImage> DecodeImage(const std::string& bytes, const std::string& what);

}  // namespace tlcm
