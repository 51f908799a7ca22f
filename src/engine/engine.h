// The serving engine: keeps pipelines resident on every device, batches compatible requests,
// runs them on one worker thread per device and streams events back. Torch-free; it knows
// "a pipeline that starts, steps and decodes samples" (engine/pipeline.h), nothing about UNets.
//
// Life of a request:
//   Submit() validates and admits it (or answers an error at once) -> its images wait in the
//   StepScheduler's queue -> a worker's iteration takes them into a running set (a batch) ->
//   the pipeline starts them, steps the set once per iteration and decodes the images that
//   finished -> the engine's encoder pool encodes each image (the worker goes on at once) and
//   hands it to the request's GenerationEventSink, in the order the pipeline produced them ->
//   exactly one terminal OnDone, after the last image.
//
// Batching, per model (BatchingOptions::mode): two policies of one scheduler (StepScheduler;
// engine/step_scheduler.h states the rules). Step-level: images join and leave a device's
// running set of their model and size at every step boundary. Request-level: a batch of one
// BatchKey forms once (when full, after max_queue_delay_micros, or while draining) and runs to
// its end on its device. Either way image i of a request keeps seed + i wherever it runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/batching_mode.h"
#include "engine/clock.h"
#include "engine/engine_observer.h"
#include "engine/generation_events.h"
#include "engine/generation_request.h"
#include "engine/pipeline.h"
#include "image/image_format.h"
#include "pipelines/pipeline_factory.h"

namespace tlcm::engine {

// One model to serve.
struct ModelOptions {
  ModelSpec spec;                    // spec.name is the model name clients use
  std::vector<std::string> devices;  // where to load it (entries of EngineOptions::devices);
                                     // empty = every device
  BatchingOptions batching;
  RequestLimits limits;
  // Warm-up: one generation of one image per device before the engine reports ready.
  bool warmup = true;
  int warmup_steps = 0;   // 0 = ModelInfo::min_steps
  int warmup_width = 0;   // pixels; 0 = ModelInfo::default_width
  int warmup_height = 0;  // pixels; 0 = ModelInfo::default_height
};

struct EngineOptions {
  // One worker thread per entry, e.g. {"cuda:0", "cuda:1"} or {"cpu", "cpu"} (two CPU workers;
  // duplicates are allowed and tell apart by worker index).
  std::vector<std::string> devices;
  std::vector<ModelOptions> models;
  // Grace period of Drain() without argument and of the destructor.
  int64_t drain_grace_micros = 30'000'000;
  // Threads that encode images and previews (PNG / JPEG / WebP) off the device workers;
  // 0 = half the machine's hardware threads, 1..16 (EncoderPool::ThreadsFor).
  int encoder_threads = 0;
  // What the encoder threads call; empty = tlcm::EncodeImage. Must be thread-safe. (Tests pass
  // slow or failing encoders.)
  std::function<absl::StatusOr<std::string>(const RgbImage& image, ImageFormat format, int quality)>
      image_encoder;
  Clock* clock = nullptr;              // not owned; nullptr = RealClock()
  EngineObserver* observer = nullptr;  // not owned, may be null; must outlive the Engine
};

// Creates the pipeline of one model on one device. Production passes tlcm::CreatePipeline; tests
// pass fakes. Called on the device's worker thread; may throw (the engine turns exceptions into
// INTERNAL statuses).
using PipelineFactory = std::function<absl::StatusOr<std::unique_ptr<Pipeline>>(
    const ModelSpec& spec, const std::string& device)>;

// What ListModels reports about one model.
struct ModelStatus {
  ModelInfo info;                    // only `name` is set until the model has loaded
  std::vector<std::string> devices;  // where it is (to be) resident
  bool ready = false;                // loaded and warmed up on every one of them
  BatchingOptions batching;
  RequestLimits limits;
};

namespace internal {
class EngineCore;
}  // namespace internal

// Refers to one accepted request. Cheap to copy; every copy refers to the same request.
// Thread-safe. Stays valid after the request ended and after the Engine is gone.
class RequestHandle {
 public:
  RequestHandle() = default;  // refers to nothing; Cancel() does nothing

  uint64_t id() const { return id_; }  // unique within the Engine, from 1
  // The seed in use (the request's, or the random one drawn for it). Image i uses seed() + i.
  uint64_t seed() const { return seed_; }

  // Ends the request with CANCELLED unless it has already ended: at once if it is queued (its
  // place is freed); if it is running, at once for the sink (no events but OnDone follow) while
  // its images leave the batch at the next step boundary and the rest of the batch goes on.
  // Never blocks on a pipeline. Idempotent; a no-op after the request ended or the Engine is
  // destroyed. OnDone may be delivered on the calling thread before Cancel returns.
  void Cancel() const;

 private:
  friend class internal::EngineCore;
  RequestHandle(std::weak_ptr<internal::EngineCore> core, uint64_t id, uint64_t seed)
      : core_(std::move(core)), id_(id), seed_(seed) {}

  std::weak_ptr<internal::EngineCore> core_;
  uint64_t id_ = 0;
  uint64_t seed_ = 0;
};

// Thread-safe: every method may be called from any thread, concurrently.
class Engine {
 public:
  // Checks `options` and starts one worker thread per device plus a timer thread; the workers
  // load their models through `factory` and warm them up in the background (see ready()).
  // Errors (at once): INVALID_ARGUMENT naming the option at fault (no devices, no models, a
  // duplicate or empty model name, a model device not in `devices`, batching values below
  // their minimum, a device holding no model).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(EngineOptions options,
                                                        PipelineFactory factory);

  // Drain(drain_grace_micros) unless drained already, then joins all threads (waiting for
  // running batches to reach their next step boundary and for loading to end).
  ~Engine();

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Admits `request`; its events then go to `sink` (kept alive until OnDone has returned).
  // Returns at once, never waiting for inference. On an error nothing is admitted and the sink
  // gets no call. Errors:
  //   UNAVAILABLE        the engine is not ready (still loading, or loading failed: the message
  //                      says why) or is draining;
  //   NOT_FOUND          no model named request.model;
  //   INVALID_ARGUMENT   a field breaks a rule (see ValidateRequest); the message names both;
  //   DEADLINE_EXCEEDED  request.deadline has already passed, or comes before the request's
  //                      denoising could end even at the fastest rate the model has shown
  //                      (milliseconds per megapixel-step of one image, from earlier batches);
  //   RESOURCE_EXHAUSTED the model's queue holds max_queue_size requests.
  // A request naming style adapters (request.loras) first has them loaded on every device of
  // its model, on the calling thread (Pipeline::PrepareAdapters: NOT_FOUND naming an adapter the
  // model does not offer), so that no batch waits for a load.
  absl::StatusOr<RequestHandle> Submit(GenerationRequest request,
                                       std::shared_ptr<GenerationEventSink> sink);

  // Graceful shutdown: from now on Submit answers UNAVAILABLE; queued and running requests go
  // on (queued batches no longer wait for their delay) until `grace` has passed on the engine's
  // Clock; then every request still unfinished ends with UNAVAILABLE (running ones leave their
  // batch at the next step boundary). Returns when every accepted request's OnDone has returned.
  // Later (or concurrent) calls wait for the first to complete. ready() is false from the start.
  // Blocks the caller: do not call from an event sink.
  void Drain(absl::Duration grace);
  void Drain();  // with EngineOptions::drain_grace_micros

  // True once every worker has loaded and warmed up all its models (and not draining).
  bool ready() const;
  // Blocks until every worker has loaded and warmed up its models (OK) or one failed (its error,
  // naming the model and device). Then the engine stays not ready and Submit answers
  // UNAVAILABLE.
  absl::Status WaitUntilReady() const;

  // The configured models, in configuration order.
  std::vector<ModelStatus> ListModels() const;

  // The style adapters `model` offers now (Pipeline::AdapterNames of its first device), sorted;
  // empty for an unknown model or before the engine is ready. Reads the model's adapter folder:
  // for ListModels answers, not per request.
  std::vector<std::string> Adapters(const std::string& model) const;

  // Whether the device workers make progress. DEADLINE_EXCEEDED naming the worker when one has
  // been inside a batch for longer than `limit` on the engine's Clock without reaching a step
  // boundary, delivering an image or ending the batch (a hung device, driver or kernel: only a
  // restart helps); OK otherwise, also while loading, idle or draining.
  absl::Status CheckProgress(absl::Duration limit) const;

  // Encoder threads in use (EngineOptions::encoder_threads resolved).
  int encoder_threads() const;

 private:
  explicit Engine(std::shared_ptr<internal::EngineCore> core);

  std::shared_ptr<internal::EngineCore> core_;
};

}  // namespace tlcm::engine
