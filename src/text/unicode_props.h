// Character properties and lower-casing exactly as Python (3.11, unicodedata 14.0) and the `regex`
// module see them; the data comes from unicode_tables.cc (generated). Thread-safe (pure).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "text/unicode_tables.h"

namespace tlcm {

// The unicode_data::k* flag bits of `cp` (0 for cp > U+10FFFF).
uint8_t UnicodeFlags(char32_t cp);

inline bool HasUnicodeFlag(char32_t cp, uint8_t flag) { return (UnicodeFlags(cp) & flag) != 0; }

// Python's str.lower(): the full lower-case mapping (U+0130 becomes two code points) with the
// final-sigma rule (U+03A3 after a cased letter and not before one, case-ignorable characters
// skipped, becomes U+03C2).
std::u32string PythonLower(std::u32string_view text);

// The ASCII character that `cp` equals under the regex module's IGNORECASE when matched against
// one of the literal characters of CLIP's pre-tokenizer pattern ('s' for 'S' and U+017F, ...);
// `cp` itself when there is none.
char32_t FoldForLiteral(char32_t cp);

}  // namespace tlcm
