// What the engine accepts as prompt text: valid UTF-8 (the tokenizers and the JSON logs rely on
// it) with at least one visible character. Torch-free.
#pragma once

#include "absl/strings/string_view.h"

namespace tlcm::engine {

// Whether `text` is well-formed UTF-8: no stray continuation bytes, no truncated or overlong
// sequences, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
bool IsValidUtf8(absl::string_view text);

// Whether valid UTF-8 `text` shows nothing: every code point is white space as Unicode defines
// it (ASCII space and controls \t\n\v\f\r, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000) or an invisible format character (U+180E, U+200B..U+200D,
// U+2060, U+FEFF). The empty string is blank.
bool IsBlankText(absl::string_view text);

}  // namespace tlcm::engine
