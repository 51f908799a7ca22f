// The header of a safetensors file, parsed and checked without LibTorch (so that it can be
// fuzzed alone): an 8-byte little-endian header length, a JSON object {key: {dtype, shape,
// data_offsets}} (plus an optional "__metadata__"), then the data section.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tlcm {

// The dtypes the reader accepts: those of every published TLCM checkpoint's weights.
enum class SafetensorsDtype { kF32, kF16, kBF16 };

// "F32", "F16", "BF16" (the names the format uses).
const char* SafetensorsDtypeName(SafetensorsDtype dtype);
// Bytes per element: 4 or 2.
uint64_t SafetensorsDtypeSize(SafetensorsDtype dtype);

struct SafetensorsEntry {
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset into the data section
  uint64_t end = 0;    // one past the last byte
};

struct SafetensorsHeader {
  uint64_t data_offset = 0;  // 8 + header length: where the data section starts in the file
  std::map<std::string, SafetensorsEntry> entries;
};

// Header JSON larger than this is refused (the format's own limit is 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

// Parses and validates the header of `file` (the whole file's bytes): the length fits the limit
// and the file, the JSON is an object, every entry has a supported dtype, a shape of natural
// numbers whose element count does not overflow, and data_offsets inside the data section that
// hold exactly shape x dtype bytes; no two tensors share bytes. Errors are DataLoss naming `path`
// and, where there is one, the key. Reads nothing outside `file`.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view file,
                                                         const std::string& path);

}  // namespace tlcm
