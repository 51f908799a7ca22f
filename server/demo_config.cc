#include "server/demo_config.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tlcm::server {

namespace fs = std::filesystem;

std::vector<std::string> DemoConfigCandidates(const std::string& override_path,
                                              const std::string& executable_path,
                                              const std::string& source_dir) {
  if (!override_path.empty()) return {override_path};
  std::vector<std::string> candidates;
  if (!executable_path.empty()) {
    candidates.push_back((fs::path(executable_path).parent_path() / ".." / "share" / "tlcm-serve" /
                          "config" / "demo.textproto")
                             .lexically_normal()
                             .string());
  }
  if (!source_dir.empty()) {
    candidates.push_back((fs::path(source_dir) / "config" / "demo.textproto").string());
  }
  return candidates;
}

absl::StatusOr<std::string> FindDemoConfig(const std::string& override_path,
                                           const std::string& executable_path,
                                           const std::string& source_dir) {
  const auto candidates = DemoConfigCandidates(override_path, executable_path, source_dir);
  for (const auto& candidate : candidates) {
    std::error_code error;
    if (fs::is_regular_file(candidate, error)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(
      "no --config given and no demo configuration found (tried: ", absl::StrJoin(candidates, ", "),
      "); pass --config or --demo_config"));
}

std::string ExecutablePath() {
  std::error_code error;
  const fs::path path = fs::read_symlink("/proc/self/exe", error);
  return error ? std::string() : path.string();
}

}  // namespace tlcm::server
