// Test data location, for every test binary (torch-free: the text and image suites include it
// directly; test_util.h re-exports it for the torch suites).
#pragma once

#include <string>

namespace tlcm::testing {

// Absolute path of `relative` under tests/data/ (TLCM_TEST_DATA_DIR: set by tests/CMakeLists.txt).
inline std::string DataPath(const std::string& relative) {
  return std::string(TLCM_TEST_DATA_DIR) + "/" + relative;
}

}  // namespace tlcm::testing
