#include "image/deflate_fast.h"

#include <libdeflate.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "image/bit_writer.h"
#include "image/huffman_code.h"

namespace tlcm {
namespace {

// Deflate's alphabets and tables (RFC 1951, sections 3.2.5-3.2.7).
constexpr int kEndOfBlock = 256;
constexpr int kFirstLengthSymbol = 257;
constexpr int kLiteralLengthSymbols = 286;
constexpr int kCodeLengthSymbols = 19;
constexpr size_t kMaxMatch = 258;
constexpr uint16_t kLengthBase[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                      15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                      67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr uint8_t kLengthExtraBits[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                          2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr uint8_t kCodeLengthOrder[kCodeLengthSymbols] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                          11, 4,  12, 3, 13, 2, 14, 1, 15};
constexpr uint8_t kRepeatExtraBits[3] = {2, 3, 7};  // code-length symbols 16, 17, 18

// Index into kLengthBase of the length code for each match length 3..258.
constexpr std::array<uint8_t, kMaxMatch + 1> kLengthCodeOf = [] {
  std::array<uint8_t, kMaxMatch + 1> table{};
  uint8_t code = 0;
  for (size_t length = 3; length <= kMaxMatch; ++length) {
    while (code < 28 && kLengthBase[code + 1] <= length) ++code;
    table[length] = code;
  }
  return table;
}();

// Every run is a match at distance 1. The distance code sent has two codes of one bit (codes 0
// and 1, a complete code that every inflater accepts); distance 1 is code 0: one 0 bit.
constexpr int kDistanceCodes = 2;
constexpr int kDistanceBits = 1;

// One block's symbols: its bytes are literals except for the runs, with the count of each
// literal/length symbol.
struct ParsedBlock {
  struct Run {
    size_t offset;  // into the data; the byte before it is the one repeated
    size_t length;  // kDeflateMinRun..kMaxMatch
  };
  std::vector<Run> runs;         // in order, not overlapping
  std::vector<uint32_t> counts;  // per literal/length symbol, end of block included
  uint64_t extra_bits = 0;       // length extra bits and distance bits of the runs
};

uint32_t Load32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

// Counts every byte as a literal (four tables: a long stretch of one value then does not wait
// on one counter), then finds the runs and turns their bytes into length symbols.
void Parse(const uint8_t* data, size_t begin, size_t end, ParsedBlock* block) {
  static_assert(kDeflateMinRun == 4, "the run finder compares 4 bytes at once");
  uint32_t tables[4][256] = {};
  size_t i = begin;
  for (; i + 4 <= end; i += 4) {
    ++tables[0][data[i]];
    ++tables[1][data[i + 1]];
    ++tables[2][data[i + 2]];
    ++tables[3][data[i + 3]];
  }
  for (; i < end; ++i) ++tables[0][data[i]];
  block->counts.assign(kLiteralLengthSymbols, 0);
  for (int b = 0; b < 256; ++b) {
    block->counts[b] = tables[0][b] + tables[1][b] + tables[2][b] + tables[3][b];
  }
  ++block->counts[kEndOfBlock];

  block->runs.clear();
  block->extra_bits = 0;
  for (i = std::max<size_t>(begin, 1); i + kDeflateMinRun <= end;) {
    const uint8_t byte = data[i - 1];
    if (Load32(data + i) != 0x01010101u * byte) {
      ++i;
      continue;
    }
    size_t length = kDeflateMinRun;
    const size_t limit = std::min(end - i, kMaxMatch);
    while (length < limit && data[i + length] == byte) ++length;
    const int code = kLengthCodeOf[length];
    block->runs.push_back({i, length});
    block->counts[byte] -= static_cast<uint32_t>(length);
    ++block->counts[kFirstLengthSymbol + code];
    block->extra_bits += kLengthExtraBits[code] + kDistanceBits;
    i += length;
  }
}

// A dynamic block's code tables and how its header sends them.
struct DynamicHeader {
  std::vector<uint8_t> lengths;  // literal/length code
  std::vector<uint16_t> codes;
  int literal_lengths_sent = 0;  // HLIT + 257
  // The code lengths (literal/length then distance) as code-length symbols 0..18, each with the
  // value of its extra bits (16: repeat the previous 3-6 times, 17: 3-10 zeros, 18: 11-138 zeros).
  std::vector<std::pair<uint8_t, uint8_t>> items;
  std::vector<uint8_t> item_lengths;  // code-length code
  std::vector<uint16_t> item_codes;
  int item_lengths_sent = 0;  // HCLEN + 4
  uint64_t bits = 0;          // the whole header, block type bits included
};

std::vector<std::pair<uint8_t, uint8_t>> RunLengthCode(const std::vector<uint8_t>& lengths) {
  std::vector<std::pair<uint8_t, uint8_t>> items;
  for (size_t i = 0; i < lengths.size();) {
    const uint8_t length = lengths[i];
    size_t run = 1;
    while (i + run < lengths.size() && lengths[i + run] == length) ++run;
    if (length == 0 && run >= 3) {
      const size_t take = std::min<size_t>(run, 138);
      items.emplace_back(take >= 11 ? 18 : 17, static_cast<uint8_t>(take - (take >= 11 ? 11 : 3)));
      i += take;
    } else if (length != 0 && run >= 3 && i > 0 && lengths[i - 1] == length) {
      const size_t take = std::min<size_t>(run, 6);
      items.emplace_back(16, static_cast<uint8_t>(take - 3));
      i += take;
    } else {
      items.emplace_back(length, 0);
      ++i;
    }
  }
  return items;
}

DynamicHeader BuildHeader(const std::vector<uint32_t>& counts) {
  DynamicHeader header;
  header.lengths = HuffmanCodeLengths(counts, 15);
  header.codes = CanonicalCodes(header.lengths);
  header.literal_lengths_sent = kFirstLengthSymbol;
  for (int s = kFirstLengthSymbol; s < kLiteralLengthSymbols; ++s) {
    if (header.lengths[s] != 0) header.literal_lengths_sent = s + 1;
  }
  std::vector<uint8_t> sent(header.lengths.begin(),
                            header.lengths.begin() + header.literal_lengths_sent);
  sent.insert(sent.end(), kDistanceCodes, kDistanceBits);
  header.items = RunLengthCode(sent);

  std::vector<uint32_t> item_counts(kCodeLengthSymbols, 0);
  for (const auto& [symbol, extra] : header.items) ++item_counts[symbol];
  header.item_lengths = HuffmanCodeLengths(item_counts, 7);
  header.item_codes = CanonicalCodes(header.item_lengths);
  header.item_lengths_sent = 4;
  for (int k = 0; k < kCodeLengthSymbols; ++k) {
    if (header.item_lengths[kCodeLengthOrder[k]] != 0) header.item_lengths_sent = k + 1;
  }
  header.bits = 3 + 5 + 5 + 4 + 3 * header.item_lengths_sent;
  for (const auto& [symbol, extra] : header.items) {
    header.bits += header.item_lengths[symbol] + (symbol >= 16 ? kRepeatExtraBits[symbol - 16] : 0);
  }
  return header;
}

// Writes data[begin, end) as parsed into `block`.
void WriteDynamicBlock(const uint8_t* data, size_t begin, size_t end, const ParsedBlock& block,
                       const DynamicHeader& header, bool last, BitWriter* out) {
  out->Put(last ? 1 : 0, 1);
  out->Put(2, 2);  // dynamic Huffman codes
  out->Put(header.literal_lengths_sent - 257, 5);
  out->Put(kDistanceCodes - 1, 5);
  out->Put(header.item_lengths_sent - 4, 4);
  out->Flush();
  for (int k = 0; k < header.item_lengths_sent; ++k) {
    out->Put(header.item_lengths[kCodeLengthOrder[k]], 3);
    out->Flush();
  }
  for (const auto& [symbol, extra] : header.items) {
    out->Put(header.item_codes[symbol], header.item_lengths[symbol]);
    if (symbol >= 16) out->Put(extra, kRepeatExtraBits[symbol - 16]);
    out->Flush();
  }
  const uint16_t* codes = header.codes.data();
  const uint8_t* lengths = header.lengths.data();
  // Three literals (<= 45 bits) per Flush().
  auto put_literals = [&](const uint8_t* from, const uint8_t* to) {
    for (; from + 3 <= to; from += 3) {
      out->Put(codes[from[0]], lengths[from[0]]);
      out->Put(codes[from[1]], lengths[from[1]]);
      out->Put(codes[from[2]], lengths[from[2]]);
      out->Flush();
    }
    for (; from < to; ++from) {
      out->Put(codes[*from], lengths[*from]);
      out->Flush();
    }
  };
  size_t next = begin;
  for (const ParsedBlock::Run& run : block.runs) {
    put_literals(data + next, data + run.offset);
    const int code = kLengthCodeOf[run.length];
    const int symbol = kFirstLengthSymbol + code;
    out->Put(codes[symbol], lengths[symbol]);
    out->Put(run.length - kLengthBase[code], kLengthExtraBits[code]);
    out->Put(0, kDistanceBits);
    out->Flush();
    next = run.offset + run.length;
  }
  put_literals(data + next, data + end);
  out->Put(codes[kEndOfBlock], lengths[kEndOfBlock]);
  out->Flush();
}

void WriteStoredBlock(const uint8_t* bytes, size_t size, bool last, BitWriter* out) {
  out->Put(last ? 1 : 0, 1);
  out->Put(0, 2);  // stored
  out->AlignToByte();
  const uint8_t header[4] = {static_cast<uint8_t>(size), static_cast<uint8_t>(size >> 8),
                             static_cast<uint8_t>(~size), static_cast<uint8_t>(~size >> 8)};
  out->PutBytes(header, sizeof(header));
  out->PutBytes(bytes, size);
}

}  // namespace

std::string ZlibCompressFast(const uint8_t* data, size_t size) {
  const size_t blocks = std::max<size_t>(1, (size + kDeflateBlockBytes - 1) / kDeflateBlockBytes);
  // A block never takes more than a stored block: 3 header bits, up to 7 bits of padding, 4
  // bytes of lengths and the data (<= 6 bytes beyond the data). Plus the 2-byte zlib header, the
  // final padding byte, the 4-byte Adler-32 and BitWriter's 8 bytes of room.
  std::string out(size + 6 * blocks + 7 + 8, '\0');
  uint8_t* const start = reinterpret_cast<uint8_t*>(out.data());
  BitWriter writer(start);
  // Deflate with a 32 KiB window, "fastest" level; (CMF * 256 + FLG) % 31 == 0 as RFC 1950 asks.
  const uint8_t zlib_header[2] = {0x78, 0x01};
  writer.PutBytes(zlib_header, sizeof(zlib_header));

  ParsedBlock block;
  for (size_t b = 0; b < blocks; ++b) {
    const size_t begin = b * kDeflateBlockBytes;
    const size_t end = std::min(size, begin + kDeflateBlockBytes);
    const bool last = b + 1 == blocks;
    Parse(data, begin, end, &block);
    const DynamicHeader header = BuildHeader(block.counts);
    uint64_t dynamic_bits = header.bits + block.extra_bits;
    for (int s = 0; s < kLiteralLengthSymbols; ++s) {
      dynamic_bits += uint64_t{block.counts[s]} * header.lengths[s];
    }
    const uint64_t stored_bits = 3 + 7 + 32 + 8 * uint64_t{end - begin};
    if (dynamic_bits <= stored_bits) {
      WriteDynamicBlock(data, begin, end, block, header, last, &writer);
    } else {
      WriteStoredBlock(data + begin, end - begin, last, &writer);
    }
  }
  writer.AlignToByte();
  const uint32_t adler = libdeflate_adler32(1, data, size);
  const uint8_t trailer[4] = {static_cast<uint8_t>(adler >> 24), static_cast<uint8_t>(adler >> 16),
                              static_cast<uint8_t>(adler >> 8), static_cast<uint8_t>(adler)};
  writer.PutBytes(trailer, sizeof(trailer));
  out.resize(static_cast<size_t>(writer.cursor() - start));
  return out;
}

}  // namespace tlcm
