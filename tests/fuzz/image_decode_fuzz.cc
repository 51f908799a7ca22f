// Fuzzes the image decoders that read client input (PNG, JPEG, WebP): the input goes to each of
// them. A decoded image must hold exactly width x height x 3 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "image/jpeg_codec.h"
#include "image/png_codec.h"
#include "image/webp_codec.h"

namespace {

void Check(const absl::StatusOr<tlcm::RgbImage>& image) {
  if (image.ok() && !tlcm::CheckRgbImage(*image, "decoder").ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  Check(tlcm::DecodePng(bytes));
  Check(tlcm::DecodeJpeg(bytes));
  Check(tlcm::DecodeWebp(bytes));
  return 0;
}
