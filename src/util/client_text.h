// How strings that clients send (model names, samplers, request ids) may appear in error
// messages and log lines: bounded, so that a megabyte-long field cannot blow up a status message
// (gRPC limits metadata size) or a log line, and escaped where no JSON writer escapes them.
// Header-only and torch-free: the engine and the server use it.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tlcm {

// The most bytes of a client's string that a message or log line repeats.
inline constexpr size_t kMaxClientTextBytes = 64;

// `text` itself when it has at most `max_bytes`; otherwise its first `max_bytes` (less the tail
// of a UTF-8 sequence cut in the middle) followed by "...(N bytes)".
inline std::string TruncateClientText(absl::string_view text,
                                      size_t max_bytes = kMaxClientTextBytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character, if any.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80 && max_bytes - end < 3) {
    --end;
  }
  if ((static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) end = max_bytes;  // not UTF-8
  return absl::StrCat(text.substr(0, end), "...(", text.size(), " bytes)");
}

// TruncateClientText of `text` with quotes, backslashes, control characters and every byte
// above 0x7E written as C escapes (\", \\, \n, \x..), in double quotes: safe in any message.
inline std::string QuoteClientText(absl::string_view text, size_t max_bytes = kMaxClientTextBytes) {
  if (text.size() <= max_bytes) return absl::StrCat("\"", absl::CHexEscape(text), "\"");
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, max_bytes)), "\"...(", text.size(),
                      " bytes)");
}

}  // namespace tlcm
