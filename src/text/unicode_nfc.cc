#include "text/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "text/unicode_tables.h"

namespace tlcm {
namespace {

namespace ud = unicode_data;

// Hangul syllables decompose and compose algorithmically (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28;
constexpr int kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t CombiningClass(char32_t cp) {
  const auto* end = ud::kCombiningClassRuns + ud::kCombiningClassRunCount;
  const auto* it =
      std::upper_bound(ud::kCombiningClassRuns, end, cp,
                       [](char32_t c, const ud::CombiningClassRun& r) { return c < r.first; });
  if (it == ud::kCombiningClassRuns) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

void AppendDecomposition(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const int s = static_cast<int>(cp - kSBase);
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = ud::kDecompositions + ud::kDecompositionCount;
  const auto* it = std::lower_bound(ud::kDecompositions, end, cp,
                                    [](const ud::PoolEntry& e, char32_t c) { return e.cp < c; });
  if (it != end && it->cp == cp) {
    out.append(ud::kPool + it->offset, it->length);
  } else {
    out.push_back(cp);
  }
}

// The primary composite of (first, second), or 0 when there is none.
char32_t Compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const auto* end = ud::kCompositions + ud::kCompositionCount;
  const auto* it =
      std::lower_bound(ud::kCompositions, end, std::make_pair(first, second),
                       [](const ud::Composition& c, std::pair<char32_t, char32_t> k) {
                         return c.first < k.first || (c.first == k.first && c.second < k.second);
                       });
  return (it != end && it->first == first && it->second == second) ? it->composite : 0;
}

}  // namespace

std::u32string NfcNormalize(std::u32string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < ud::kNfcStableBelow; })) {
    return std::u32string(text);
  }
  // 1. Full canonical decomposition.
  std::u32string d;
  d.reserve(text.size() + 8);
  for (char32_t cp : text) AppendDecomposition(cp, d);

  // 2. Canonical ordering: stable sort of each run of non-starters by combining class.
  std::vector<uint8_t> ccc(d.size());
  for (size_t i = 0; i < d.size(); ++i) ccc[i] = CombiningClass(d[i]);
  for (size_t i = 0; i < d.size();) {
    if (ccc[i] == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && ccc[j] != 0) ++j;
    if (j - i > 1) {
      std::vector<std::pair<uint8_t, char32_t>> run;
      for (size_t k = i; k < j; ++k) run.emplace_back(ccc[k], d[k]);
      std::stable_sort(run.begin(), run.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t k = i; k < j; ++k) ccc[k] = run[k - i].first, d[k] = run[k - i].second;
    }
    i = j;
  }

  // 3. Canonical composition: a character combines with the last starter when nothing lies
  // between them, or when everything between them has a lower non-zero combining class (the
  // characters between are non-starters in ascending class order, so the last one decides).
  std::u32string out;
  out.reserve(d.size());
  long starter = -1;  // index in `out` of the last starter
  int last_ccc = -1;  // class of the last character kept after that starter; -1: none
  for (size_t i = 0; i < d.size(); ++i) {
    const char32_t cp = d[i];
    const int c = ccc[i];
    if (starter >= 0 && (last_ccc == -1 || last_ccc < c)) {
      const char32_t composite = Compose(out[starter], cp);
      if (composite != 0) {
        out[starter] = composite;
        continue;
      }
    }
    if (c == 0) {
      starter = static_cast<long>(out.size());
      last_ccc = -1;
    } else {
      last_ccc = c;
    }
    out.push_back(cp);
  }
  return out;
}

}  // namespace tlcm
