// How a model's requests share denoiser calls (the mode and its limits, per model), and the
// mode's name in configuration files, ListModels answers and benchmark output. Both modes are
// policies of one scheduler (engine/step_scheduler.h) over the step-wise pipeline interface.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace tlcm::engine {

enum class BatchingMode {
  // Request-level: a batch forms once per (model, steps, size, sampler, image-input strength and
  // mask), waiting up to max_queue_delay_micros to fill, and runs to its end on its device
  // without taking in anything else.
  kRequest,
  // Step-level: a running set per (model, size) on each device, which queued images join and
  // finished, cancelled or expired ones leave at every step boundary; one denoiser call per step
  // for the whole set whatever its mix of step counts and samplers.
  kStep,
};

// Per-model batching.
struct BatchingOptions {
  BatchingMode mode = BatchingMode::kRequest;
  int max_batch_size = 4;                 // images per batch or running set (>= 1)
  int64_t max_queue_delay_micros = 5000;  // kRequest: how long a batch may wait to fill up (>= 0)
  int max_queue_size = 64;                // requests waiting for this model; beyond it Submit
                                          // answers RESOURCE_EXHAUSTED (>= 1)
};

// "request" or "step".
absl::string_view BatchingModeName(BatchingMode mode);
// The mode named `name` ("request" or "step"); nullopt for any other text.
std::optional<BatchingMode> ParseBatchingMode(absl::string_view name);

}  // namespace tlcm::engine
