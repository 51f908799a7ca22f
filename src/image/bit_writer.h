// Writes bit fields into a byte buffer least significant bit first, the order of deflate
// (RFC 1951, section 3.1.1).
#pragma once

#include <cstdint>
#include <cstring>

namespace tlcm {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "BitWriter stores its buffer as is");

// Bits gather in a 64-bit register; Flush() stores the whole bytes among them. The caller owns
// the buffer and guarantees room: every Flush() stores 8 bytes at the cursor (only the whole
// bytes count as written), so the buffer needs 8 bytes beyond the last byte written.
class BitWriter {
 public:
  explicit BitWriter(uint8_t* out) : cursor_(out) {}

  // Adds the low `count` bits of `bits` (higher bits must be zero). At most 56 bits may be added
  // between two Flush() calls.
  void Put(uint64_t bits, int count) {
    buffer_ |= bits << pending_;
    pending_ += count;
  }

  // Stores the complete bytes; fewer than 8 bits stay pending.
  void Flush() {
    std::memcpy(cursor_, &buffer_, sizeof(buffer_));
    const int bytes = pending_ >> 3;
    cursor_ += bytes;
    buffer_ >>= 8 * bytes;  // bytes <= 7: at most 63 bits are ever pending
    pending_ &= 7;
  }

  // Pads with zero bits to the next byte boundary and stores everything: nothing is pending.
  void AlignToByte() {
    pending_ = (pending_ + 7) & ~7;
    Flush();
  }

  // Copies `size` bytes verbatim; the writer must be aligned (AlignToByte()). `bytes` may be
  // null when `size` is 0 (an empty input's stored block); memcpy may not be given null.
  void PutBytes(const uint8_t* bytes, size_t size) {
    if (size == 0) return;
    std::memcpy(cursor_, bytes, size);
    cursor_ += size;
  }

  // One past the last complete byte stored.
  uint8_t* cursor() const { return cursor_; }

 private:
  uint8_t* cursor_;
  uint64_t buffer_ = 0;
  int pending_ = 0;  // bits in buffer_, below 8 right after Flush()
};

}  // namespace tlcm
