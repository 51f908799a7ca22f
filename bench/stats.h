// Summary statistics of benchmark samples (header-only; the benches share it).
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

namespace tlcm::bench {

// The nearest-rank percentile (`percent` in [0, 100]) of `v`; 0 when `v` is empty.
inline double Percentile(std::vector<double> v, double percent) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto index = static_cast<size_t>(percent / 100.0 * static_cast<double>(v.size()));
  return v[std::min(v.size() - 1, index)];
}

inline double Median(std::vector<double> v) { return Percentile(std::move(v), 50); }

inline double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

}  // namespace tlcm::bench
