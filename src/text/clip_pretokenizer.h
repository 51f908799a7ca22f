// The text pass of transformers' slow CLIPTokenizer when ftfy is not installed: BERT's
// BasicTokenizer (strip_accents=False, do_split_on_punc=False) followed by CLIP's word regex.
// Thread-safe (pure).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tlcm {

// BasicTokenizer: drops NUL, U+FFFD and control characters (category C* but \t \n \r), turns
// whitespace (\t \n \r and category Zs) into ' ', puts spaces around CJK ideographs,
// NFC-normalizes, splits on str.isspace() characters, lower-cases each piece with str.lower().
// Returns the pieces.
std::vector<std::u32string> ClipBasicTokenize(std::u32string_view text);

// Splits the pieces joined with single spaces the way
// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
// (regex module, IGNORECASE) does with findall; returns each match as UTF-8.
std::vector<std::string> ClipSplitWords(const std::vector<std::u32string>& pieces);

// ClipSplitWords(ClipBasicTokenize(text)).
std::vector<std::string> ClipPreTokenize(std::u32string_view text);

}  // namespace tlcm
