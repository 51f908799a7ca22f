// Fake pipelines for engine tests (and the server's tests): no tensors, hand-steppable, with
// failure injection. Torch-free.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/pipeline.h"

namespace tlcm::engine::testing {

// The ModelInfo a fake pipeline reports unless FakePipelineControl::SetInfo says otherwise:
// samplers {"lcm", "tlcm"}, steps 2..8 (default 4), 64x64 default, multiples of 8, at most
// 256x256 pixels, default guidance 0.
ModelInfo DefaultFakeModelInfo(const std::string& name);

// The image a fake pipeline makes for `job`: key.width x key.height; the first 8 bytes hold the
// job's seed (little-endian), the rest a colour derived from it. SeedOfFakeImage reads it back.
RgbImage MakeFakeImage(const BatchKey& key, const ImageJob& job);
uint64_t SeedOfFakeImage(const RgbImage& image);

// Shared control of every fake pipeline made by its Factory(). Thread-safe. Must outlive the
// engine that uses the factory.
//
// A fake Run, for a batch of jobs with key.steps = N:
//   records the run; applies an injected failure (returns it, or throws);
//   for step 1..N: polls should_drop for every job still in (returns early when none is left),
//     waits for a step permit when manual stepping is on, calls on_step(step, N), then
//     on_preview(job, step, 8x8 image) for every job that wants_preview;
//   polls should_drop once more, calls on_image for every job left (MakeFakeImage);
//   returns StageTimings {1, 2, 3} ms with one prompt-cache miss per distinct prompt, hits for
//   repeats within the batch.
class FakePipelineControl {
 public:
  struct RunRecord {
    std::string device;
    BatchKey key;
    std::vector<ImageJob> jobs;
    bool warmup = false;             // prompt "warm-up" with one job
    std::vector<size_t> dropped;     // jobs that left through should_drop
  };

  // The factory to pass to Engine::Create.
  PipelineFactory Factory();

  // What pipelines of `model` report (default: DefaultFakeModelInfo).
  void SetInfo(const std::string& model, ModelInfo info);

  // Loading: while held, the factory blocks; FailCreate makes it fail for `model`.
  void HoldLoading(bool hold);
  void FailCreate(const std::string& model, absl::Status status);

  // Manual stepping: when on, every step of every run waits for a permit. AllowSteps(n) grants
  // n permits (one per step of one run). SetManualStepping(false) lets all steps run freely.
  void SetManualStepping(bool manual);
  void AllowSteps(int steps);

  // The next Run of `model` (after warm-up) fails: returns `status`, or throws a
  // std::runtime_error with `what`, before its first step.
  void FailNextRun(const std::string& model, absl::Status status);
  void ThrowOnNextRun(const std::string& model, const std::string& what);

  // The next Run of `model` (after warm-up) returns OK but misbehaves: kSkipImages hands over no
  // image; kMalformedImages hands over images whose pixel buffer is one byte short.
  enum class Misbehaviour { kSkipImages, kMalformedImages };
  void MisbehaveOnNextRun(const std::string& model, Misbehaviour misbehaviour);

  // Runs so far (warm-ups included, flagged), in start order; dropped jobs are filled in as runs
  // progress.
  std::vector<RunRecord> runs() const;
  // Runs that are not warm-ups.
  std::vector<RunRecord> request_runs() const;
  int created_pipelines() const;

  // Wait (up to `timeout` of real time; false on timeout) until this many non-warm-up runs have
  // started / this many runs wait for a step permit / this many runs have returned.
  bool WaitForRequestRuns(int count, absl::Duration timeout = absl::Seconds(20));
  bool WaitForBlockedSteps(int count, absl::Duration timeout = absl::Seconds(20));
  bool WaitForFinishedRuns(int count, absl::Duration timeout = absl::Seconds(20));

 private:
  friend class FakePipeline;

  struct Failure {
    absl::Status status;
    std::string throw_what;  // non-empty: throw instead
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ModelInfo> infos_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Status> create_failures_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Failure> run_failures_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Misbehaviour> misbehaviours_ ABSL_GUARDED_BY(mu_);
  bool hold_loading_ ABSL_GUARDED_BY(mu_) = false;
  bool manual_ ABSL_GUARDED_BY(mu_) = false;
  int permits_ ABSL_GUARDED_BY(mu_) = 0;
  int blocked_ ABSL_GUARDED_BY(mu_) = 0;
  int finished_request_runs_ ABSL_GUARDED_BY(mu_) = 0;
  int created_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<RunRecord> runs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tlcm::engine::testing
