// The engine's metrics hook. The metrics layer (server/, Prometheus) implements it; the engine
// itself knows nothing about Prometheus. Torch-free.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "engine/generation_events.h"
#include "engine/pipeline.h"

namespace tlcm::engine {

// One batch that ended: a request-level batch (all its steps), a step-level iteration (one
// step of a running set, with its joiners' start and its finished samples' decode) or a warm-up.
struct BatchReport {
  std::string model;
  std::string device;
  int worker = 0;
  int batch_size = 0;  // images in the batch
  int steps = 0;
  int width = 0;  // pixels
  int height = 0;
  absl::Status status;  // the outcome (OK even when some samples left early)
  // Stage times as the pipeline measured them, and its prompt-cache lookups (of the calls that
  // succeeded).
  StageTimings timings;
  double step_ms = 0;    // timings.denoise_ms / steps: the mean time of one denoising step
  double worker_ms = 0;  // how long the device's worker was busy with the batch: the pipeline
                         // calls and the engine's bookkeeping, not the images' encoding (that
                         // runs on the encoder pool)
};

// Threading: methods are called from any engine thread, concurrently, sometimes while the engine
// holds internal locks (so that gauge values arrive in order). Implementations must be
// thread-safe, quick, and must not call back into the Engine. Every method has an empty default.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;

  // Gauges: requests of `model` waiting in its queue / admitted and not yet terminal (queued
  // plus running). Reported on every change.
  virtual void OnQueueDepth(const std::string& /*model*/, int /*queued_requests*/) {}
  virtual void OnInFlight(const std::string& /*model*/, int /*in_flight_requests*/) {}

  // Every Submit's admission outcome. `model` is "" when the model is unknown (NOT_FOUND), so
  // that clients cannot create label values.
  virtual void OnAdmission(const std::string& /*model*/, const absl::Status& /*status*/) {}

  // Every accepted request's terminal status and metrics (as the sink's OnDone sees them).
  virtual void OnRequestDone(const std::string& /*model*/, const absl::Status& /*status*/,
                             const RequestMetrics& /*metrics*/) {}

  // Every batch that ended (BatchReport), including the warm-ups (`warmup` true).
  virtual void OnBatchDone(const BatchReport& /*report*/, bool /*warmup*/) {}

  // Images delivered (encoded on the encoder pool and handed to a sink).
  virtual void OnImageDelivered(const std::string& /*model*/, double /*encode_ms*/) {}
  // Gauge: images and previews handed to the encoder pool and not yet encoded.
  virtual void OnEncoderBacklog(int /*pending*/) {}

  // Gauge: the memory of `device` as worker `worker`'s pipeline measured it right after a batch
  // run (warm-ups included). Fields the pipeline could not measure are -1. Not called under an
  // engine lock; CPU workers all report the same process-wide figure.
  virtual void OnDeviceMemory(const std::string& /*device*/, int /*worker*/,
                              const DeviceMemory& /*memory*/) {}

  // The adapter cache of `model` on `device` (cumulative counters, current bytes and entries),
  // right after each of its batch runs, like OnDeviceMemory. Only for models with adapters.
  virtual void OnAdapterCache(const std::string& /*model*/, const std::string& /*device*/,
                              int /*worker*/, const AdapterCacheStats& /*stats*/) {}

  // A worker finished loading and warming up its pipelines (status OK) or failed to.
  virtual void OnWorkerReady(const std::string& /*device*/, int /*worker*/,
                             const absl::Status& /*status*/) {}
};

}  // namespace tlcm::engine
