#include "fake_pipeline.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/time/clock.h"

namespace tlcm::testing {

void FakeControl::HoldLoading() {
  absl::MutexLock lock(&mu_);
  loading_held_ = true;
}

void FakeControl::ReleaseLoading() {
  absl::MutexLock lock(&mu_);
  loading_held_ = false;
}

void FakeControl::HoldSteps() {
  absl::MutexLock lock(&mu_);
  steps_held_ = true;
}

void FakeControl::ReleaseSteps() {
  absl::MutexLock lock(&mu_);
  steps_held_ = false;
}

bool FakeControl::WaitForParkedBatches(int n) {
  struct Wanted {
    const int* parked;
    int n;
  };
  absl::MutexLock lock(&mu_);
  Wanted wanted{&parked_, n};
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](Wanted* w) { return *w->parked >= w->n; }, &wanted), absl::Seconds(10));
}

void FakeControl::WaitWhileLoadingHeld() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](bool* held) { return !*held; }, &loading_held_));
}

void FakeControl::ParkWhileStepsHeld(const std::function<bool()>& all_dropped) {
  absl::MutexLock lock(&mu_);
  if (!steps_held_) return;
  ++parked_;
  // Wake up now and then to let a cancelled batch leave (as a real pipeline would at its next
  // step boundary).
  while (steps_held_ && !all_dropped()) {
    mu_.AwaitWithTimeout(absl::Condition(+[](bool* held) { return !*held; }, &steps_held_),
                         absl::Milliseconds(5));
  }
  --parked_;
}

RgbImage FakeImage(uint64_t seed, const std::string& prompt, int width, int height) {
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  uint64_t state = absl::HashOf(seed, prompt) | 1;
  for (auto& byte : image.pixels) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    byte = static_cast<uint8_t>(state >> 24);
  }
  return image;
}

namespace {

class FakePipeline : public engine::Pipeline {
 public:
  FakePipeline(const ModelSpec& spec, std::shared_ptr<FakeControl> control)
      : control_(std::move(control)) {
    info_.name = spec.name;
    info_.family = "sdxl";
    info_.samplers = {"lcm", "tlcm"};
    info_.min_steps = spec.min_steps;
    info_.max_steps = spec.max_steps;
    info_.default_steps = spec.default_steps;
    info_.default_width = spec.default_width == 0 ? 64 : spec.default_width;
    info_.default_height = spec.default_height == 0 ? 64 : spec.default_height;
    info_.size_multiple = 8;
    info_.max_pixels = spec.max_pixels == 0 ? 256 * 256 : spec.max_pixels;
    info_.default_guidance_scale = 0;
  }

  const engine::ModelInfo& info() const override { return info_; }

  absl::StatusOr<engine::StageTimings> Run(const engine::BatchKey& key,
                                           const std::vector<engine::ImageJob>& jobs,
                                           const engine::BatchCallbacks& callbacks) override {
    control_->batches_run.fetch_add(1);
    int largest = control_->largest_batch.load();
    while (static_cast<int>(jobs.size()) > largest &&
           !control_->largest_batch.compare_exchange_weak(largest, static_cast<int>(jobs.size()))) {
    }
    std::vector<bool> dropped(jobs.size(), false);
    auto poll_drops = [&] {
      bool all = true;
      for (size_t j = 0; j < jobs.size(); ++j) {
        if (!dropped[j] && callbacks.should_drop && callbacks.should_drop(j)) dropped[j] = true;
        all = all && dropped[j];
      }
      return all;
    };
    if (poll_drops()) return engine::StageTimings();
    for (int step = 1; step <= key.steps; ++step) {
      std::this_thread::sleep_for(std::chrono::milliseconds(control_->step_delay_ms.load()));
      if (callbacks.on_step) callbacks.on_step(step, key.steps);
      for (size_t j = 0; j < jobs.size(); ++j) {
        if (dropped[j] || !callbacks.wants_preview || !callbacks.wants_preview(j)) continue;
        callbacks.on_preview(j, step, FakeImage(jobs[j].seed + step, jobs[j].prompt,
                                                key.width / 8, key.height / 8));
      }
      control_->ParkWhileStepsHeld(poll_drops);
      if (poll_drops()) return engine::StageTimings();
    }
    for (size_t j = 0; j < jobs.size(); ++j) {
      if (dropped[j]) continue;
      callbacks.on_image(j, FakeImage(jobs[j].seed, jobs[j].prompt, key.width, key.height));
    }
    engine::StageTimings timings;
    timings.text_encode_ms = 0.5;
    timings.denoise_ms = key.steps * control_->step_delay_ms.load();
    timings.decode_ms = 0.5;
    timings.prompt_cache_misses = static_cast<int>(jobs.size());
    return timings;
  }

 private:
  std::shared_ptr<FakeControl> control_;
  engine::ModelInfo info_;
};

}  // namespace

engine::PipelineFactory MakeFakePipelineFactory(std::shared_ptr<FakeControl> control) {
  return [control](const ModelSpec& spec,
                   const std::string& device) -> absl::StatusOr<std::unique_ptr<engine::Pipeline>> {
    control->WaitWhileLoadingHeld();
    return std::make_unique<FakePipeline>(spec, control);
  };
}

}  // namespace tlcm::testing
