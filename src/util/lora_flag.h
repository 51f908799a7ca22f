// The command-line form of a style adapter, NAME:SCALE (tlcm-generate --lora, tlcm-client
// --lora). Header-only and torch-free.
#pragma once

#include <cmath>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "util/client_text.h"

namespace tlcm {

// The most an adapter's weight may be away from 0 (GenerateRequest.loras, the command lines).
inline constexpr float kMaxLoraScale = 8.0f;

// "NAME:SCALE" -> (NAME, SCALE), split at the last ':'; "NAME" alone has scale 1. SCALE must be
// a finite number in [-kMaxLoraScale, kMaxLoraScale]. InvalidArgument naming `flag` otherwise.
inline absl::StatusOr<std::pair<std::string, float>> ParseLoraFlag(absl::string_view text,
                                                                   absl::string_view flag) {
  const size_t colon = text.rfind(':');
  const absl::string_view name = colon == absl::string_view::npos ? text : text.substr(0, colon);
  float scale = 1.0f;
  if (colon != absl::string_view::npos &&
      (!absl::SimpleAtof(text.substr(colon + 1), &scale) || !std::isfinite(scale) ||
       std::fabs(scale) > kMaxLoraScale)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", QuoteClientText(text),
                                                   " needs NAME:SCALE with SCALE a number in [-",
                                                   kMaxLoraScale, ", ", kMaxLoraScale, "]"));
  }
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", QuoteClientText(text), " has no adapter name before ':'"));
  }
  return std::make_pair(std::string(name), scale);
}

}  // namespace tlcm
