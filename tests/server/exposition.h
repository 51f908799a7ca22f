// A Prometheus text exposition parsed for the tests that scrape /metrics.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace tlcm::testing {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> help;  // family -> help text
  std::map<std::string, std::string> type;  // family -> counter / gauge / histogram / ...
  std::vector<Sample> samples;

  // The value of the sample `name` whose labels include `labels`; NaN when absent.
  double Value(const std::string& name,
               const std::map<std::string, std::string>& labels = {}) const;
};

// Parses the text format strictly enough to catch malformed output; failures are test failures.
Exposition ParseExposition(const std::string& text);

}  // namespace tlcm::testing
