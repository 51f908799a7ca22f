// JSON helpers for config.json / model_index.json / tokenizer files. Every error names the file.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace tlcm {

// Reads and parses a JSON file: NotFound when it is missing, InvalidArgument when malformed.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);

// json[key] converted to T, or `fallback` when the key is absent or null (diffusers writes null
// for "use the default"). Throws std::invalid_argument naming the key on a type mismatch: call
// it inside ParseConfig, which turns the throw into a status.
template <typename T>
T ValueOr(const nlohmann::json& json, const char* key, T fallback) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(absl::StrCat("\"", key, "\": ", e.what()));
  }
}

// The largest value a config may give for a width, channel count, head count, layer count or
// vocabulary: far above every model served here (CLIP's vocabulary of 49408 tokens is the
// largest), low enough that a typo is named instead of turning into an allocation of terabytes.
inline constexpr int64_t kMaxConfigSize = int64_t{1} << 17;

// `value` when it is in [1, kMaxConfigSize]; throws std::invalid_argument naming `key` and the
// rule otherwise (call it inside ParseConfig).
inline int64_t CheckSize(const char* key, int64_t value) {
  if (value < 1 || value > kMaxConfigSize) {
    throw std::invalid_argument(
        absl::StrCat("\"", key, "\": ", value, " is outside [1, ", kMaxConfigSize, "]"));
  }
  return value;
}

// json[key] (or `fallback` when absent or null) as a size (CheckSize).
inline int64_t SizeOr(const nlohmann::json& json, const char* key, int64_t fallback) {
  return CheckSize(key, ValueOr<int64_t>(json, key, fallback));
}

// The same for a non-empty list of sizes, e.g. block_out_channels.
inline std::vector<int64_t> SizesOr(const nlohmann::json& json, const char* key,
                                    std::vector<int64_t> fallback) {
  std::vector<int64_t> values = ValueOr<std::vector<int64_t>>(json, key, std::move(fallback));
  if (values.empty()) throw std::invalid_argument(absl::StrCat("\"", key, "\": empty"));
  for (int64_t value : values) CheckSize(key, value);
  return values;
}

// For options this project implements only one way: passes when json[key] is absent, null or
// equal to `supported`; otherwise throws std::invalid_argument naming the key and both values
// (call it inside ParseConfig).
template <typename T>
void RequireValue(const nlohmann::json& json, const char* key, const T& supported) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null() || *it == nlohmann::json(supported)) return;
  throw std::invalid_argument(absl::StrCat("\"", key, "\": ", it->dump(),
                                           " is not supported (only ",
                                           nlohmann::json(supported).dump(), ")"));
}

// Runs `parse(json)` and converts a thrown nlohmann::json::exception (missing key via at(),
// wrong type) or std::invalid_argument (a rule of the parser) into InvalidArgument naming `path`.
template <typename Parse>
auto ParseConfig(const std::string& path, const nlohmann::json& json, Parse parse)
    -> absl::StatusOr<decltype(parse(json))> {
  try {
    return parse(json);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  } catch (const std::invalid_argument& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
}

}  // namespace tlcm
