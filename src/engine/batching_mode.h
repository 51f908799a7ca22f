// How a model's requests share denoiser calls, and the mode's name in configuration files,
// ListModels answers and benchmark output.
#pragma once

#include <optional>

#include "absl/strings/string_view.h"

namespace tlcm::engine {

enum class BatchingMode {
  // A batch forms once per (model, steps, size, sampler), waiting up to max_queue_delay_micros
  // to fill, and runs to its end (BatchQueue).
  kRequest,
  // Step-level: a running set per (model, size) on each device, which queued images join and
  // finished, cancelled or expired ones leave at every step boundary; one denoiser call per step
  // for the whole set whatever its mix of step counts and samplers (StepScheduler). Needs a
  // pipeline with a SampleStepper.
  kStep,
};

// "request" or "step".
absl::string_view BatchingModeName(BatchingMode mode);
// The mode named `name` ("request" or "step"); nullopt for any other text.
std::optional<BatchingMode> ParseBatchingMode(absl::string_view name);

}  // namespace tlcm::engine
