#include "tests/server/exposition.h"

#include <cmath>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tlcm::testing {

double Exposition::Value(const std::string& name,
                         const std::map<std::string, std::string>& labels) const {
  for (const auto& sample : samples) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      auto it = sample.labels.find(key);
      match = match && it != sample.labels.end() && it->second == value;
    }
    if (match) return sample.value;
  }
  return std::nan("");
}

Exposition ParseExposition(const std::string& text) {
  Exposition out;
  static const std::regex kName("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex kSample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([^ ]+)( -?[0-9]+)?)");
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (absl::StartsWith(line, "# HELP ") || absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line.substr(7), absl::MaxSplits(' ', 1));
      EXPECT_EQ(parts.size(), 2u) << line;
      if (parts.size() != 2) continue;
      EXPECT_TRUE(std::regex_match(parts[0], kName)) << line;
      auto& table = line[2] == 'H' ? out.help : out.type;
      EXPECT_EQ(table.count(parts[0]), 0u) << "declared twice: " << line;
      table[parts[0]] = parts[1];
      continue;
    }
    if (absl::StartsWith(line, "#")) continue;
    std::smatch match;
    if (!std::regex_match(line, match, kSample)) {
      ADD_FAILURE() << "malformed sample line: " << line;
      continue;
    }
    Sample sample;
    sample.name = match[1];
    const std::string labels = match[3];
    for (auto it = std::sregex_iterator(labels.begin(), labels.end(), kLabel);
         it != std::sregex_iterator(); ++it) {
      sample.labels[(*it)[1]] = (*it)[2];
    }
    const std::string value = match[4];
    if (value == "+Inf" || value == "-Inf" || value == "NaN") {
      sample.value = value == "NaN" ? std::nan("") : (value[0] == '-' ? -INFINITY : INFINITY);
    } else {
      EXPECT_TRUE(absl::SimpleAtod(value, &sample.value)) << line;
    }
    // The sample's family must have been declared before it.
    std::string family = sample.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (out.type.count(family) == 0 && absl::EndsWith(family, suffix)) {
        family = std::string(absl::StripSuffix(family, suffix));
      }
    }
    EXPECT_EQ(out.type.count(family), 1u) << "no TYPE before " << line;
    EXPECT_EQ(out.help.count(family), 1u) << "no HELP before " << line;
    out.samples.push_back(std::move(sample));
  }
  return out;
}

}  // namespace tlcm::testing
