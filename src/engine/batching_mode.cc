#include "engine/batching_mode.h"

namespace tlcm::engine {
namespace {

constexpr absl::string_view kRequestName = "request";
constexpr absl::string_view kStepName = "step";

}  // namespace

absl::string_view BatchingModeName(BatchingMode mode) {
  return mode == BatchingMode::kStep ? kStepName : kRequestName;
}

std::optional<BatchingMode> ParseBatchingMode(absl::string_view name) {
  if (name == kRequestName) return BatchingMode::kRequest;
  if (name == kStepName) return BatchingMode::kStep;
  return std::nullopt;
}

}  // namespace tlcm::engine
