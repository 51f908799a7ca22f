// A fast zlib compressor for filtered image rows: speed first, ratio second.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tlcm {

// Compresses `size` bytes at `data` into a zlib stream (RFC 1950 around RFC 1951 deflate) that
// every inflater reads. The data is cut into blocks of kDeflateBlockBytes; each becomes a
// dynamic-Huffman block built from that block's own symbol counts, whose only matches are runs
// (distance 1: the byte before repeated kDeflateMinRun to 258 times), or a stored block when
// that is smaller. No search for matches at other distances: on PNG-filtered photographs they
// hardly pay (zlib's level 1 made larger files with them than Huffman-only) and searching costs
// most of a compressor's time. Output size <= size + 6 per block + 7 bytes. `size` may be 0.
std::string ZlibCompressFast(const uint8_t* data, size_t size);

// Bytes per deflate block: the most a stored block holds. Larger blocks measured faster (fewer
// code tables to build) and smaller (fewer to send) on 1024x1024 images than 8-32 KiB ones.
inline constexpr size_t kDeflateBlockBytes = 65535;

// Shortest run of one repeated byte sent as a match instead of as literals.
inline constexpr size_t kDeflateMinRun = 4;

}  // namespace tlcm
