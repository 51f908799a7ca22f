#include "engine/prompt_text.h"

#include <cstdint>
#include <optional>

namespace tlcm::engine {
namespace {

// Decodes the code point starting at text[*pos] and moves *pos past it; nullopt when the bytes
// there are not a well-formed UTF-8 sequence.
std::optional<uint32_t> NextCodePoint(absl::string_view text, size_t* pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(*pos);
  if (lead < 0x80) {
    ++*pos;
    return lead;
  }
  int length;
  uint32_t code;
  uint32_t min_code;  // below it the sequence is overlong
  if ((lead & 0xE0) == 0xC0) {
    length = 2, code = lead & 0x1F, min_code = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, code = lead & 0x0F, min_code = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, code = lead & 0x07, min_code = 0x10000;
  } else {
    return std::nullopt;  // a continuation byte or 0xF8..0xFF
  }
  if (*pos + length > text.size()) return std::nullopt;
  for (int i = 1; i < length; ++i) {
    const unsigned char next = byte(*pos + i);
    if ((next & 0xC0) != 0x80) return std::nullopt;
    code = (code << 6) | (next & 0x3F);
  }
  if (code < min_code || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
    return std::nullopt;
  }
  *pos += length;
  return code;
}

bool IsInvisible(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         c == 0x180E || (c >= 0x2000 && c <= 0x200D) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x2060 || c == 0x3000 || c == 0xFEFF;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    if (!NextCodePoint(text, &pos).has_value()) return false;
  }
  return true;
}

bool IsBlankText(absl::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const std::optional<uint32_t> code = NextCodePoint(text, &pos);
    if (!code.has_value() || !IsInvisible(*code)) return false;
  }
  return true;
}

}  // namespace tlcm::engine
