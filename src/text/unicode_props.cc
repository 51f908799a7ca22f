#include "text/unicode_props.h"

#include <algorithm>

namespace tlcm {
namespace {

namespace ud = unicode_data;

constexpr char32_t kMaxCodePoint = 0x10FFFF;
constexpr char32_t kCapitalSigma = 0x3A3;
constexpr char32_t kSmallSigma = 0x3C3;
constexpr char32_t kFinalSigma = 0x3C2;

// Index of the entry whose `from` equals cp, or -1 (tables sorted by `from`).
long FindPair(const ud::CodePointPair* table, size_t count, char32_t cp) {
  const auto* end = table + count;
  const auto* it = std::lower_bound(
      table, end, cp, [](const ud::CodePointPair& p, char32_t c) { return p.from < c; });
  return (it != end && it->from == cp) ? it - table : -1;
}

// Python's handle_capital_sigma: final unless a cased letter follows (case-ignorables skipped),
// and only when a cased letter precedes.
bool IsFinalSigma(std::u32string_view text, size_t i) {
  size_t j = i;
  bool cased_before = false;
  while (j > 0) {
    --j;
    const uint8_t f = UnicodeFlags(text[j]);
    if (f & ud::kCaseIgnorable) continue;
    cased_before = (f & ud::kCased) != 0;
    break;
  }
  if (!cased_before) return false;
  for (size_t k = i + 1; k < text.size(); ++k) {
    const uint8_t f = UnicodeFlags(text[k]);
    if (f & ud::kCaseIgnorable) continue;
    return (f & ud::kCased) == 0;
  }
  return true;
}

}  // namespace

uint8_t UnicodeFlags(char32_t cp) {
  if (cp > kMaxCodePoint) return 0;
  const auto* end = ud::kFlagRuns + ud::kFlagRunCount;
  const auto* it = std::upper_bound(ud::kFlagRuns, end, cp,
                                    [](char32_t c, const ud::FlagRun& r) { return c < r.first; });
  return (it - 1)->flags;  // kFlagRuns[0].first == 0, so `it` is past the first run
}

std::u32string PythonLower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t cp = text[i];
    if (cp < 0x80) {
      out.push_back(cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp);
    } else if (cp == kCapitalSigma) {
      out.push_back(IsFinalSigma(text, i) ? kFinalSigma : kSmallSigma);
    } else if (long k = FindPair(ud::kLowerSingle, ud::kLowerSingleCount, cp); k >= 0) {
      out.push_back(ud::kLowerSingle[k].to);
    } else {
      const auto* end = ud::kLowerMulti + ud::kLowerMultiCount;
      const auto* it = std::lower_bound(
          ud::kLowerMulti, end, cp, [](const ud::PoolEntry& e, char32_t c) { return e.cp < c; });
      if (it != end && it->cp == cp) {
        out.append(ud::kPool + it->offset, it->length);
      } else {
        out.push_back(cp);
      }
    }
  }
  return out;
}

char32_t FoldForLiteral(char32_t cp) {
  const long k = FindPair(ud::kLiteralFolds, ud::kLiteralFoldCount, cp);
  return k >= 0 ? ud::kLiteralFolds[k].to : cp;
}

}  // namespace tlcm
