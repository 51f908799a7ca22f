// Where tlcm-server finds the built-in demo configuration (config/demo.textproto, which points
// at the random-weight demo models in models/demo/) when started without --config.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tlcm::server {

// The candidate paths of the demo configuration, in lookup order:
//   1. `override_path` (the --demo_config flag), when not empty - then the only candidate;
//   2. <executable's folder>/../share/tlcm-serve/config/demo.textproto (an installed tree:
//      bin/tlcm-server next to share/tlcm-serve/{config,models});
//   3. <source_dir>/config/demo.textproto (running from a build tree; `source_dir` is the
//      source tree the binary was built from).
std::vector<std::string> DemoConfigCandidates(const std::string& override_path,
                                              const std::string& executable_path,
                                              const std::string& source_dir);

// The first candidate that exists. NOT_FOUND listing every path tried otherwise.
absl::StatusOr<std::string> FindDemoConfig(const std::string& override_path,
                                           const std::string& executable_path,
                                           const std::string& source_dir);

// The running executable's path (/proc/self/exe), or "" when unknown.
std::string ExecutablePath();

}  // namespace tlcm::server
