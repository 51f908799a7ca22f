// Helpers shared by the test suites: test data paths, scratch paths, random parameters and tensor
// comparison.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loaders/safetensors.h"
#include "tests/test_data_path.h"

namespace tlcm::testing {

// A path under the system temp folder that nothing has used yet: unique per process and per call
// (`name` keeps it readable). Tests then never delete a folder an earlier run left behind (on
// the H200 benchmark machine exactly the tests that did so crashed, with
// std::filesystem::remove_all the suspect), and parallel ctest processes never share a path.
inline std::string FreshTempPath(const std::string& name) {
  static std::atomic<int> calls{0};
  return (std::filesystem::temp_directory_path() /
          ("tlcm_test_" + std::to_string(::getpid()) + "_" + std::to_string(calls++) + "_" + name))
      .string();
}

// FreshTempPath(name), created as an empty folder.
inline std::string FreshTempDir(const std::string& name) {
  const std::string dir = FreshTempPath(name);
  std::filesystem::create_directories(dir);
  return dir;
}

// Fills every parameter of `module` with N(0, 0.1^2) values from `seed` (a generator of its own;
// the global one is left alone). For modules built from models/layers/loaded_layers.h that a test
// runs without loading a checkpoint: their parameters hold unset memory until then.
inline void FillRandom(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (torch::Tensor& parameter : module.parameters()) parameter.normal_(0.0, 0.1, generator);
}

// Loads a golden safetensors file into a name -> tensor map (fails the test on error).
inline std::map<std::string, torch::Tensor> LoadGolden(const std::string& relative) {
  std::map<std::string, torch::Tensor> out;
  auto file = SafetensorsFile::Open(DataPath(relative));
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return out;
  for (const auto& [key, entry] : (*file)->entries()) out[key] = (*file)->Get(key).value().clone();
  return out;
}

// Asserts max |a - b| <= atol + rtol * max|b| and reports the worst element.
inline ::testing::AssertionResult AllClose(const torch::Tensor& actual,
                                           const torch::Tensor& expected, double atol,
                                           double rtol = 0.0) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " != " << expected.sizes();
  }
  auto a = actual.detach().to(torch::kCPU, torch::kFloat64);
  auto b = expected.detach().to(torch::kCPU, torch::kFloat64);
  const double diff = (a - b).abs().max().item<double>();
  const double scale = b.abs().max().item<double>();
  const double limit = atol + rtol * scale;
  if (diff <= limit) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max |diff| " << diff << " > " << limit << " (max |expected| " << scale << ")";
}

}  // namespace tlcm::testing
