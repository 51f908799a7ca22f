// Length-limited canonical Huffman codes, in the form deflate (RFC 1951, section 3.2.2) sends
// them: a code length per symbol, codes assigned in symbol order within each length.
#pragma once

#include <cstdint>
#include <vector>

namespace tlcm {

// Code lengths (0 = symbol unused) for symbols occurring `counts[s]` times: a prefix code close
// to the optimum whose lengths never exceed `max_length` (1..15). The code is always complete
// (the Kraft sum is exactly 1), as zlib's inflate requires: when fewer than two symbols occur,
// symbols 0 and/or 1 are added with length 1. Needs counts.size() >= 2 and
// counts.size() <= 2^max_length.
std::vector<uint8_t> HuffmanCodeLengths(const std::vector<uint32_t>& counts, int max_length);

// The canonical code of every symbol given its `lengths` (RFC 1951's assignment), bit-reversed so
// that writing the low `lengths[s]` bits least significant bit first sends the code's first bit
// first. Unused symbols (length 0) get 0.
std::vector<uint16_t> CanonicalCodes(const std::vector<uint8_t>& lengths);

}  // namespace tlcm
