#include "loaders/safetensors_header.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace tlcm {
namespace {

absl::Status Corrupt(const std::string& path, const std::string& key, const std::string& what) {
  if (key.empty()) return absl::DataLossError(absl::StrCat(path, ": ", what));
  return absl::DataLossError(absl::StrCat(path, ": tensor '", key, "': ", what));
}

absl::StatusOr<SafetensorsDtype> DtypeFromName(const std::string& name) {
  for (SafetensorsDtype d :
       {SafetensorsDtype::kF32, SafetensorsDtype::kF16, SafetensorsDtype::kBF16}) {
    if (name == SafetensorsDtypeName(d)) return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("dtype '", name, "' is not supported (expected F32, F16 or BF16)"));
}

// Parses one header entry; errors name the key.
absl::StatusOr<SafetensorsEntry> ParseEntry(const std::string& path, const std::string& key,
                                            const nlohmann::json& value, uint64_t data_bytes) {
  if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
      !value.contains("data_offsets")) {
    return Corrupt(path, key, "header entry needs dtype, shape and data_offsets");
  }
  const auto& dtype = value["dtype"];
  const auto& shape = value["shape"];
  const auto& offsets = value["data_offsets"];
  if (!dtype.is_string()) return Corrupt(path, key, "dtype is not a string");
  auto scalar = DtypeFromName(dtype.get<std::string>());
  if (!scalar.ok()) return Corrupt(path, key, std::string(scalar.status().message()));
  SafetensorsEntry entry;
  entry.dtype = *scalar;
  if (!shape.is_array()) return Corrupt(path, key, "shape is not an array");
  uint64_t numel = 1;
  for (const auto& d : shape) {
    if (!d.is_number_unsigned()) return Corrupt(path, key, "shape holds a non-natural number");
    const uint64_t dim = d.get<uint64_t>();
    if (dim != 0 && numel > (uint64_t{1} << 62) / dim) return Corrupt(path, key, "shape overflows");
    numel *= dim;
    entry.shape.push_back(static_cast<int64_t>(dim));
  }
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return Corrupt(path, key, "data_offsets must be two natural numbers");
  }
  entry.begin = offsets[0].get<uint64_t>();
  entry.end = offsets[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_bytes) {
    return Corrupt(path, key,
                   absl::StrCat("data_offsets [", entry.begin, ", ", entry.end,
                                ") lie outside the data section of ", data_bytes, " bytes"));
  }
  const uint64_t expected = numel * SafetensorsDtypeSize(entry.dtype);
  if (entry.end - entry.begin != expected) {
    return Corrupt(path, key,
                   absl::StrCat("holds ", entry.end - entry.begin,
                                " bytes but shape x dtype needs ", expected));
  }
  return entry;
}

}  // namespace

const char* SafetensorsDtypeName(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kF32:
      return "F32";
    case SafetensorsDtype::kF16:
      return "F16";
    case SafetensorsDtype::kBF16:
      return "BF16";
  }
  return "?";
}

uint64_t SafetensorsDtypeSize(SafetensorsDtype dtype) {
  return dtype == SafetensorsDtype::kF32 ? 4 : 2;
}

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view file,
                                                         const std::string& path) {
  if (file.size() < 8) return Corrupt(path, "", "file is shorter than the 8-byte header length");
  const auto* bytes = reinterpret_cast<const unsigned char*>(file.data());
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | bytes[i];
  if (header_bytes > kMaxSafetensorsHeaderBytes) {
    return Corrupt(path, "", absl::StrCat("header length ", header_bytes, " exceeds the limit"));
  }
  if (header_bytes > file.size() - 8) {
    return Corrupt(path, "",
                   absl::StrCat("header length ", header_bytes, " runs past the end of the file"));
  }
  nlohmann::json json = nlohmann::json::parse(bytes + 8, bytes + 8 + header_bytes,
                                              /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return Corrupt(path, "", "header is not a JSON object");
  }
  SafetensorsHeader header;
  header.data_offset = 8 + header_bytes;
  const uint64_t data_bytes = file.size() - header.data_offset;
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    auto entry = ParseEntry(path, it.key(), it.value(), data_bytes);
    if (!entry.ok()) return entry.status();
    header.entries.emplace(it.key(), *std::move(entry));
  }
  // Tensors may not share bytes.
  std::vector<std::pair<uint64_t, const std::string*>> spans;
  for (const auto& [key, e] : header.entries) {
    if (e.end > e.begin) spans.emplace_back(e.begin, &key);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    const SafetensorsEntry& prev = header.entries.at(*spans[i - 1].second);
    if (prev.end > spans[i].first) {
      return Corrupt(path, *spans[i].second,
                     absl::StrCat("data overlaps tensor '", *spans[i - 1].second, "'"));
    }
  }
  return header;
}

}  // namespace tlcm
