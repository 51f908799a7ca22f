// Helpers of the text encoder tests: scratch component folders and max-difference reporting.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "loaders/safetensors.h"

namespace tlcm::testing {

inline void WriteJson(const std::string& path, const nlohmann::json& json) {
  std::ofstream(path) << json.dump(2);
}

// The module's parameters by name, as a checkpoint would hold them.
inline std::map<std::string, torch::Tensor> StateDict(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    out[item.key()] = item.value().detach().clone();
  }
  return out;
}

// max |a - b| as a double (shapes must agree).
inline double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace tlcm::testing
