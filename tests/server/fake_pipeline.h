// A torch-free stand-in for the SDXL / FLUX pipelines, for the gRPC end-to-end tests: it honours
// the ModelSpec's limits, calls back per step like a real pipeline, and "generates" an image that
// is a pure function of (seed, prompt, size), so seed determinism is checkable. Tests steer it
// through a shared FakeControl: hold loading, hold steps mid-batch, set the step time.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "engine/engine.h"

namespace tlcm::testing {

class FakeControl {
 public:
  // Loading (the factory) blocks until ReleaseLoading() while HoldLoading() is in effect.
  void HoldLoading();
  void ReleaseLoading();
  // Steps block after on_step until ReleaseSteps() while HoldSteps() is in effect.
  void HoldSteps();
  void ReleaseSteps();
  // Blocks until at least `n` batches are parked on held steps (true), or 10 s passed (false).
  bool WaitForParkedBatches(int n);

  std::atomic<int> step_delay_ms{1};
  std::atomic<int> batches_run{0};    // Run() calls, warm-up runs included
  std::atomic<int> largest_batch{0};  // most jobs seen in one Run()

  // Internal: called by the fake pipeline.
  void WaitWhileLoadingHeld();
  void ParkWhileStepsHeld(const std::function<bool()>& all_dropped);

 private:
  absl::Mutex mu_;
  bool loading_held_ ABSL_GUARDED_BY(mu_) = false;
  bool steps_held_ ABSL_GUARDED_BY(mu_) = false;
  int parked_ ABSL_GUARDED_BY(mu_) = 0;
};

// The deterministic image of one job.
RgbImage FakeImage(uint64_t seed, const std::string& prompt, int width, int height);

// A PipelineFactory building fake pipelines (family "sdxl", samplers {"lcm", "tlcm"}, size
// multiple 8) under `control`.
engine::PipelineFactory MakeFakePipelineFactory(std::shared_ptr<FakeControl> control);

}  // namespace tlcm::testing
