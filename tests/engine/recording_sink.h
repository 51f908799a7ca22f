// Event sinks and observers that record what the engine reports, for tests. Thread-safe.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine_observer.h"
#include "engine/generation_events.h"

namespace tlcm::engine::testing {

// Records one request's events as short strings ("queued 0", "started cpu#0 batch 2 images 0+2",
// "step 1/4", "preview 0 @1", "image 0 seed 42", "done OK") plus the payloads, and counts
// protocol violations (any call after OnDone, a second OnDone, overlapping calls).
class RecordingSink : public GenerationEventSink {
 public:
  void OnQueued(int position) override { Add(absl::StrCat("queued ", position)); }
  void OnStarted(const StartedEvent& e) override {
    Add(absl::StrCat("started ", e.device, "#", e.worker, " batch ", e.batch_size, " images ",
                     e.first_image, "+", e.num_images));
  }
  void OnStep(const StepEvent& e) override {
    Add(absl::StrCat("step ", e.step, "/", e.total_steps));
  }
  void OnPreview(PreviewEvent e) override {
    Add(absl::StrCat("preview ", e.index, " @", e.step));
    absl::MutexLock lock(&mu_);
    previews_.push_back(std::move(e));
  }
  void OnImage(GeneratedImage image) override {
    Add(absl::StrCat("image ", image.index, " seed ", image.seed));
    absl::MutexLock lock(&mu_);
    images_.push_back(std::move(image));
  }
  void OnDone(const absl::Status& status, const RequestMetrics& metrics) override {
    Add(absl::StrCat("done ", absl::StatusCodeToString(status.code())));
    absl::MutexLock lock(&mu_);
    ++done_count_;
    status_ = status;
    metrics_ = metrics;
  }

  // The terminal status, waiting up to `timeout` of real time for it (nullopt on timeout).
  std::optional<absl::Status> WaitForDone(absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    const auto done = [this] {
      mu_.AssertHeld();
      return done_count_ > 0;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) return std::nullopt;
    return status_;
  }
  // Waits until an event starting with `prefix` was recorded.
  bool WaitForEvent(const std::string& prefix, absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    const auto seen = [&] {
      mu_.AssertHeld();
      for (const std::string& e : events_) {
        if (e.rfind(prefix, 0) == 0) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  }

  std::vector<std::string> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<GeneratedImage> images() const {
    absl::MutexLock lock(&mu_);
    return images_;
  }
  std::vector<PreviewEvent> previews() const {
    absl::MutexLock lock(&mu_);
    return previews_;
  }
  bool done() const {
    absl::MutexLock lock(&mu_);
    return done_count_ > 0;
  }
  int done_count() const {
    absl::MutexLock lock(&mu_);
    return done_count_;
  }
  absl::Status status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  RequestMetrics metrics() const {
    absl::MutexLock lock(&mu_);
    return metrics_;
  }
  int violations() const {
    absl::MutexLock lock(&mu_);
    return violations_;
  }

 protected:
  void Add(std::string event) {
    {
      absl::MutexLock lock(&mu_);
      if (in_call_ || done_count_ > 0) ++violations_;
      in_call_ = true;
      events_.push_back(std::move(event));
    }
    std::this_thread::yield();  // widens the window in which an overlapping call would show
    absl::MutexLock lock(&mu_);
    in_call_ = false;
  }

  mutable absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::vector<GeneratedImage> images_ ABSL_GUARDED_BY(mu_);
  std::vector<PreviewEvent> previews_ ABSL_GUARDED_BY(mu_);
  int done_count_ ABSL_GUARDED_BY(mu_) = 0;
  int violations_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_call_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  RequestMetrics metrics_ ABSL_GUARDED_BY(mu_);
};

// Records the observer hook's reports.
class RecordingObserver : public EngineObserver {
 public:
  void OnQueueDepth(const std::string& model, int queued) override {
    absl::MutexLock lock(&mu_);
    queue_depth_[model] = queued;
    max_queue_depth_[model] = std::max(max_queue_depth_[model], queued);
  }
  void OnInFlight(const std::string& model, int in_flight) override {
    absl::MutexLock lock(&mu_);
    in_flight_[model] = in_flight;
  }
  void OnAdmission(const std::string& model, const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ++admissions_[absl::StrCat(model, ":", absl::StatusCodeToString(status.code()))];
  }
  void OnRequestDone(const std::string& model, const absl::Status& status,
                     const RequestMetrics&) override {
    absl::MutexLock lock(&mu_);
    ++done_[absl::StrCat(model, ":", absl::StatusCodeToString(status.code()))];
  }
  void OnBatchDone(const BatchReport& report, bool warmup) override {
    absl::MutexLock lock(&mu_);
    (warmup ? warmup_batches_ : batches_).push_back(report);
  }
  void OnImageDelivered(const std::string& model, double) override {
    absl::MutexLock lock(&mu_);
    ++images_[model];
  }
  void OnWorkerReady(const std::string& device, int worker, const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    workers_[absl::StrCat(device, "#", worker)] = status;
  }

  void OnDeviceMemory(const std::string& device, int worker, const DeviceMemory& memory) override {
    absl::MutexLock lock(&mu_);
    device_memory_[absl::StrCat(device, "#", worker)] = memory;
    ++memory_reports_;
  }

  int queue_depth(const std::string& model) const { return Get(queue_depth_, model); }
  int max_queue_depth(const std::string& model) const { return Get(max_queue_depth_, model); }
  int in_flight(const std::string& model) const { return Get(in_flight_, model); }
  int admissions(const std::string& key) const { return Get(admissions_, key); }
  int done(const std::string& key) const { return Get(done_, key); }
  int images(const std::string& model) const { return Get(images_, model); }
  std::vector<BatchReport> batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  std::vector<BatchReport> warmup_batches() const {
    absl::MutexLock lock(&mu_);
    return warmup_batches_;
  }
  std::map<std::string, absl::Status> workers() const {
    absl::MutexLock lock(&mu_);
    return workers_;
  }
  // The latest memory report per worker ("cpu#0"), and how many reports came in all.
  std::map<std::string, DeviceMemory> device_memory() const {
    absl::MutexLock lock(&mu_);
    return device_memory_;
  }
  int memory_reports() const {
    absl::MutexLock lock(&mu_);
    return memory_reports_;
  }

 private:
  int Get(const std::map<std::string, int>& map, const std::string& key) const {
    absl::MutexLock lock(&mu_);
    auto it = map.find(key);
    return it == map.end() ? 0 : it->second;
  }

  mutable absl::Mutex mu_;
  std::map<std::string, int> queue_depth_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> max_queue_depth_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> in_flight_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> admissions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> done_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> images_ ABSL_GUARDED_BY(mu_);
  std::vector<BatchReport> batches_ ABSL_GUARDED_BY(mu_);
  std::vector<BatchReport> warmup_batches_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> workers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, DeviceMemory> device_memory_ ABSL_GUARDED_BY(mu_);
  int memory_reports_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tlcm::engine::testing
