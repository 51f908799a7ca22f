// UTF-8 <-> code point conversion for the tokenizers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tlcm {

// Decodes UTF-8 into code points. Invalid or truncated sequences become U+FFFD, one per bad byte
// (Python's errors="replace" does the same for the inputs we meet: prompts arrive as valid UTF-8
// from protobuf strings and the CLI).
std::vector<char32_t> DecodeUtf8(std::string_view text);

// Appends the UTF-8 encoding of `cp` to `out`.
void AppendUtf8(char32_t cp, std::string& out);

// Encodes code points as UTF-8.
std::string EncodeUtf8(const std::u32string& cps);

// Bytes of the UTF-8 sequence that the lead byte `lead` starts (1 for ASCII and for stray
// continuation bytes). Meant for text already known to be valid UTF-8.
size_t Utf8SequenceLength(char lead);

}  // namespace tlcm
