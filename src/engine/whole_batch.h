// One batch generated start to end through a pipeline's step-wise interface, outside the
// engine's scheduling: the engine's warm-up, tlcm-generate, pipeline_bench and the pipeline
// tests that go through engine::Pipeline.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/pipeline.h"

namespace tlcm::engine {

// What a whole batch produced: one image per job, in job order, and what each stage cost in
// all (the sum over the pipeline's calls).
struct WholeBatch {
  std::vector<RgbImage> images;
  StageTimings timings;
};

// Optional observers of a whole batch, called on the calling thread.
struct WholeBatchHooks {
  // After step `step` (1-based, counted over key.steps) of `total` = key.steps.
  std::function<void(int step, int total)> on_step;
  // Polled inside each denoiser call; true stops the batch with CANCELLED.
  std::function<bool()> interrupt;
};

// Starts one sample per job (SampleId{0, i}) with `key`'s schedule and size (an image input
// starts at StartStep of the pipeline's family at key.strength), advances them together one
// step per denoiser call until done and decodes them together. Errors are the pipeline's, and
// CANCELLED when hooks.interrupt stopped it; the pipeline holds no sample of the batch after an
// error. Precondition: jobs is not empty.
absl::StatusOr<WholeBatch> RunWholeBatch(Pipeline& pipeline, const BatchKey& key,
                                         const std::vector<ImageJob>& jobs,
                                         const WholeBatchHooks& hooks = {});

}  // namespace tlcm::engine
