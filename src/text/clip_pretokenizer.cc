#include "text/clip_pretokenizer.h"

#include "text/unicode_nfc.h"
#include "text/unicode_props.h"
#include "text/utf8.h"

namespace tlcm {
namespace {

namespace ud = unicode_data;

// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks it lists.
bool IsCjkIdeograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// The literal alternatives of the pattern, in the pattern's order (the first that matches wins).
constexpr std::u32string_view kLiterals[] = {
    U"<|startoftext|>", U"<|endoftext|>", U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};

// Length of the literal alternative matching `text` at `pos` case-insensitively, or 0.
size_t MatchLiteral(std::u32string_view text, size_t pos) {
  for (std::u32string_view lit : kLiterals) {
    if (pos + lit.size() > text.size()) continue;
    bool match = true;
    for (size_t k = 0; k < lit.size() && match; ++k) {
      const char32_t c = text[pos + k];
      match = c == lit[k] || FoldForLiteral(c) == lit[k];
    }
    if (match) return lit.size();
  }
  return 0;
}

}  // namespace

std::vector<std::u32string> ClipBasicTokenize(std::u32string_view text) {
  // _clean_text, then _tokenize_chinese_chars.
  std::u32string cleaned;
  cleaned.reserve(text.size());
  for (char32_t cp : text) {
    const uint8_t f = UnicodeFlags(cp);
    if (f & ud::kDrop) continue;
    if (f & ud::kBertSpace) {
      cleaned.push_back(U' ');
    } else if (IsCjkIdeograph(cp)) {
      cleaned.push_back(U' ');
      cleaned.push_back(cp);
      cleaned.push_back(U' ');
    } else {
      cleaned.push_back(cp);
    }
  }
  const std::u32string normalized = NfcNormalize(cleaned);
  // whitespace_tokenize, then lower-case each piece (str.lower never yields whitespace, so the
  // reference's second whitespace split changes nothing).
  std::vector<std::u32string> pieces;
  size_t i = 0;
  while (i < normalized.size()) {
    if (HasUnicodeFlag(normalized[i], ud::kPySpace)) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < normalized.size() && !HasUnicodeFlag(normalized[j], ud::kPySpace)) ++j;
    pieces.push_back(PythonLower(std::u32string_view(normalized).substr(i, j - i)));
    i = j;
  }
  return pieces;
}

std::vector<std::string> ClipSplitWords(const std::vector<std::u32string>& pieces) {
  // The pattern never matches a space, so matching the space-joined text equals matching each
  // piece on its own.
  std::vector<std::string> words;
  for (const std::u32string& piece : pieces) {
    const std::u32string_view s(piece);
    size_t i = 0;
    while (i < s.size()) {
      size_t len = MatchLiteral(s, i);
      if (len == 0) {
        const uint8_t f = UnicodeFlags(s[i]);
        auto run = [&](uint8_t flag) {
          size_t j = i + 1;
          while (j < s.size() && HasUnicodeFlag(s[j], flag)) ++j;
          return j - i;
        };
        if (f & ud::kReLetter) {
          len = run(ud::kReLetter);
        } else if (f & ud::kReNumber) {
          len = 1;
        } else if (f & ud::kReOther) {
          len = run(ud::kReOther);
        } else {
          ++i;  // matched by no alternative (e.g. U+0345): findall skips it
          continue;
        }
      }
      words.push_back(EncodeUtf8(std::u32string(s.substr(i, len))));
      i += len;
    }
  }
  return words;
}

std::vector<std::string> ClipPreTokenize(std::u32string_view text) {
  return ClipSplitWords(ClipBasicTokenize(text));
}

}  // namespace tlcm
