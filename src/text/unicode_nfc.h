// Unicode NFC normalization (canonical decomposition, canonical ordering, canonical composition),
// identical to Python's unicodedata.normalize("NFC", ...) for Unicode 14.0 (the data of
// unicode_tables.cc). Thread-safe (pure).
#pragma once

#include <string>
#include <string_view>

namespace tlcm {

std::u32string NfcNormalize(std::u32string_view text);

}  // namespace tlcm
