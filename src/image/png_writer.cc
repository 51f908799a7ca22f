#include "image/png_writer.h"

#include <libdeflate.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "image/deflate_fast.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

constexpr size_t kMaxIdatBytes = size_t{1} << 20;
constexpr uint8_t kFilterUp = 2;

void AppendBigEndian32(uint32_t value, std::string* out) {
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value)};
  out->append(bytes, sizeof(bytes));
}

// Appends one chunk: length, type, data, CRC-32 of type and data (PNG spec, section 5.3).
void AppendChunk(const char (&type)[5], const void* data, size_t size, std::string* out) {
  AppendBigEndian32(static_cast<uint32_t>(size), out);
  out->append(type, 4);
  out->append(static_cast<const char*>(data), size);
  const uint32_t crc = libdeflate_crc32(libdeflate_crc32(0, type, 4), data, size);
  AppendBigEndian32(crc, out);
}

// out[i] = row[i] - above[i] modulo 256 for n bytes, eight at a time: each 64-bit subtraction
// leaves the top bit of every byte aside (set in the minuend, cleared in the subtrahend, so that
// no borrow crosses into the next byte) and the XOR puts that bit right.
void SubtractRow(const uint8_t* row, const uint8_t* above, uint8_t* out, size_t n) {
  constexpr uint64_t kHigh = 0x8080808080808080u;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t a, b;
    std::memcpy(&a, row + i, 8);
    std::memcpy(&b, above + i, 8);
    const uint64_t difference = ((a | kHigh) - (b & ~kHigh)) ^ ((a ^ ~b) & kHigh);
    std::memcpy(out + i, &difference, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<uint8_t>(row[i] - above[i]);
}

// The rows as PNG compresses them: per row the filter type byte (Up), then each byte minus the
// byte above it, modulo 256 (the first row keeps its bytes: PNG counts the row above as zeros).
std::vector<uint8_t> FilterRowsUp(const RgbImage& image) {
  const size_t row_bytes = static_cast<size_t>(image.width) * 3;
  std::vector<uint8_t> filtered((row_bytes + 1) * image.height);
  const uint8_t* pixels = image.pixels.data();
  for (size_t y = 0; y < static_cast<size_t>(image.height); ++y) {
    uint8_t* out = &filtered[y * (row_bytes + 1)];
    const uint8_t* row = pixels + y * row_bytes;
    *out++ = kFilterUp;
    if (y == 0) {
      std::copy(row, row + row_bytes, out);
    } else {
      SubtractRow(row, row - row_bytes, out, row_bytes);
    }
  }
  return filtered;
}

}  // namespace

absl::StatusOr<std::string> EncodePng(const RgbImage& image) {
  TLCM_RETURN_IF_ERROR(CheckRgbImage(image, "EncodePng"));
  const std::vector<uint8_t> filtered = FilterRowsUp(image);
  const std::string idat = ZlibCompressFast(filtered.data(), filtered.size());

  std::string png;
  png.reserve(8 + 25 + idat.size() + 12 * (idat.size() / kMaxIdatBytes + 1) + 12);
  png.append("\x89PNG\r\n\x1a\n", 8);
  std::string header;
  AppendBigEndian32(static_cast<uint32_t>(image.width), &header);
  AppendBigEndian32(static_cast<uint32_t>(image.height), &header);
  // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
  header.append("\x08\x02\x00\x00\x00", 5);
  AppendChunk("IHDR", header.data(), header.size(), &png);
  for (size_t offset = 0; offset < idat.size(); offset += kMaxIdatBytes) {
    AppendChunk("IDAT", idat.data() + offset, std::min(kMaxIdatBytes, idat.size() - offset), &png);
  }
  AppendChunk("IEND", "", 0, &png);
  return png;
}

}  // namespace tlcm
