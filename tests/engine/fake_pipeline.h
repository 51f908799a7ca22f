// The fake pipeline of the engine tests and the server's end-to-end tests (and tlcm-fake-server):
// no tensors, steppable by hand, with failure injection. Torch-free.
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

// The ModelInfo of a fake pipeline for `spec` (unless FakePipelineControl::SetInfo says
// otherwise): family "sdxl", samplers {"lcm", "tlcm"}, the spec's steps range and default, the
// spec's default size or 64x64, multiples of 8, the spec's max_pixels or 256x256, guidance 0,
// the spec's max_loras when it names an adapter folder (never read), else 0.
ModelInfo FakeModelInfo(const ModelSpec& spec);

// The image a fake pipeline makes for a job: width x height of noise that is a pure function of
// (seed, prompt), with the seed in the first 8 bytes (little-endian) so that SeedOfFakeImage can
// read it back from a losslessly encoded image.
RgbImage FakeImage(uint64_t seed, const std::string& prompt, int width, int height);
uint64_t SeedOfFakeImage(const RgbImage& image);

// Shared control of every fake pipeline made by its factory. Thread-safe. Must outlive the
// engine that uses the factory.
//
// A fake pipeline, step by step (the engine's Pipeline interface):
//   Start(samples): records a "run" (the samples one call started: a request-level batch, or
//     the joiners of a step-level iteration; a warm-up is one sample with prompt "warm-up");
//     reports 1 ms of text encoding, one prompt-cache miss per distinct prompt and hits for
//     repeats within the call.
//   Step(set): records the set (step_sets, unless a warm-up's); applies an injected failure
//   (FailNextRun /
//     ThrowOnNextRun; never to a warm-up) after releasing the set; at a step boundary (some
//     sample of the set has stepped) parks while steps are held (HoldSteps), polling the
//     interrupt every 5 ms and answering CANCELLED when it fires; with manual stepping on,
//     waits for a step permit (AllowSteps); CANCELLED when the interrupt fires; sleeps the step
//     delay; reports 0.5 ms of denoising.
//   Preview: FakeImage(seed + step, prompt) at width / 8 x height / 8, like a latent.
//   Decode: FakeImage(seed, prompt, width, height) per sample, or none / malformed ones for the
//     next decoded run after MisbehaveOnNextRun; reports 3 ms.
//   Release: the samples count as dropped from their run (RunRecord::dropped).
// A run has finished once each of its samples was decoded or released. MemoryUsage() reports
// what SetDeviceMemory set. An image input starts at the SDXL start step of its strength.
class FakePipelineControl {
 public:
  struct RunRecord {
    std::string device;
    BatchKey key;
    std::vector<ImageJob> jobs;
    bool warmup = false;          // prompt "warm-up" with one job
    std::vector<size_t> dropped;  // jobs released before they were decoded
  };

  // The factory to pass to Engine::Create (this control must outlive the engine).
  PipelineFactory Factory();

  // What pipelines of `model` report (default: FakeModelInfo of the spec).
  void SetInfo(const std::string& model, ModelInfo info);

  // Loading: while held, the factory blocks; FailCreate makes it fail for `model`.
  void HoldLoading(bool hold);
  void FailCreate(const std::string& model, absl::Status status);

  // Manual stepping: when on, every Step call waits for a permit before it runs. AllowSteps(n)
  // grants n permits (one per Step call: one step of one set). SetManualStepping(false) lets all
  // steps run freely.
  void SetManualStepping(bool manual);
  void AllowSteps(int steps);

  // Held steps: while held, a set parks at each step boundary (before every step but its
  // first) until released, leaving early when the engine no longer wants any of its samples.
  // Warm-ups park too.
  void HoldSteps(bool hold);

  // The style adapters pipelines of `model` offer (AdapterNames; default none). PrepareAdapters
  // accepts exactly these (NOT_FOUND naming any other); the images do not depend on them.
  void SetAdapters(const std::string& model, std::vector<std::string> names);

  // Real time each step takes (default 0).
  void SetStepDelay(absl::Duration delay);

  // What MemoryUsage() of every fake pipeline reports (default: nothing measured).
  void SetDeviceMemory(DeviceMemory memory);

  // Whether runs() keeps a record of every run (default true). A long-running fake server turns
  // it off; the counters (largest_batch, WaitFor*) go on.
  void SetRecordRuns(bool record);

  // The next Step of `model` (not a warm-up's) fails: returns `status`, or throws a
  // std::runtime_error with `what`.
  void FailNextRun(const std::string& model, absl::Status status);
  void ThrowOnNextRun(const std::string& model, const std::string& what);

  // The next Decode of `model` (not a warm-up's) returns OK but misbehaves: kSkipImages hands
  // over no image; kMalformedImages hands over images whose pixel buffer is one byte short.
  enum class Misbehaviour { kSkipImages, kMalformedImages };
  void MisbehaveOnNextRun(const std::string& model, Misbehaviour misbehaviour);

  // Runs (Start calls) so far (warm-ups included, flagged), in start order; dropped jobs are
  // filled in as runs progress.
  std::vector<RunRecord> runs() const;
  // Runs that are not warm-ups.
  std::vector<RunRecord> request_runs() const;
  // The set of every Step call so far (warm-ups' left out), in order.
  std::vector<std::vector<SampleId>> step_sets() const;
  int created_pipelines() const;
  // The most samples one Step call had (warm-ups included).
  int largest_batch() const;

  // Wait (up to `timeout` of real time; false on timeout) until this many non-warm-up runs have
  // started / this many Step calls wait for a step permit / this many sets are parked on held
  // steps / this many non-warm-up runs have finished.
  bool WaitForRequestRuns(int count, absl::Duration timeout = absl::Seconds(20));
  bool WaitForBlockedSteps(int count, absl::Duration timeout = absl::Seconds(20));
  bool WaitForParkedBatches(int count, absl::Duration timeout = absl::Seconds(10));
  bool WaitForFinishedRuns(int count, absl::Duration timeout = absl::Seconds(20));

 private:
  friend class FakePipeline;

  struct Failure {
    absl::Status status;
    std::string throw_what;  // non-empty: throw instead
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ModelInfo> infos_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<std::string>> adapters_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Status> create_failures_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Failure> run_failures_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Misbehaviour> misbehaviours_ ABSL_GUARDED_BY(mu_);
  bool hold_loading_ ABSL_GUARDED_BY(mu_) = false;
  bool manual_ ABSL_GUARDED_BY(mu_) = false;
  int permits_ ABSL_GUARDED_BY(mu_) = 0;
  int blocked_ ABSL_GUARDED_BY(mu_) = 0;
  bool steps_held_ ABSL_GUARDED_BY(mu_) = false;
  int parked_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration step_delay_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  DeviceMemory memory_ ABSL_GUARDED_BY(mu_);
  bool record_runs_ ABSL_GUARDED_BY(mu_) = true;
  int started_request_runs_ ABSL_GUARDED_BY(mu_) = 0;
  int finished_request_runs_ ABSL_GUARDED_BY(mu_) = 0;
  int largest_batch_ ABSL_GUARDED_BY(mu_) = 0;
  int created_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<RunRecord> runs_ ABSL_GUARDED_BY(mu_);
  uint64_t next_run_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, int> live_samples_ ABSL_GUARDED_BY(mu_);  // per unfinished run
  std::vector<std::vector<SampleId>> step_sets_ ABSL_GUARDED_BY(mu_);
};

// A factory that shares ownership of `control` (for callers that do not keep it alive
// themselves).
PipelineFactory MakeFakePipelineFactory(std::shared_ptr<FakePipelineControl> control);

}  // namespace tlcm::engine::testing
