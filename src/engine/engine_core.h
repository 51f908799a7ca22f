// The engine's insides, shared by the files that implement it (engine.h is the interface):
// the admitted Request and EngineCore, whose members are defined by concern:
//   engine.cc            construction, readiness, listing, drain and stop; the public facade
//   engine_admission.cc  Submit (validation, adapters, queueing) and Cancel
//   engine_dispatch.cc   the scheduler thread: deadlines, handing work to idle workers
//   engine_worker.cc     the device workers: loading, warm-up, and the iterations of running
//                        sets (joins, one step, previews, decodes) on a pipeline
//   engine_events.cc     event routing: what each request hears, and when it ends
//   engine_encoding.cc   the hand-off of images and previews to the encoder pool
// Not part of the engine's interface: include only from those files.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/encoder_pool.h"
#include "engine/engine.h"
#include "engine/event_stream.h"
#include "engine/step_scheduler.h"

namespace tlcm::engine::internal {

inline double Millis(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// `status` with `context` in front of its message.
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// Width x height in megapixels, times steps and images: the denoising work of images.
inline double MegapixelSteps(int width, int height, int steps, int images) {
  return static_cast<double>(width) * height / 1e6 * steps * images;
}

// A request as admitted. Immutable; shared by the active table and the sets running it.
struct Request {
  uint64_t id = 0;
  GenerationRequest request;
  ResolvedRequest resolved;
  uint64_t seed = 0;
  absl::Time admitted;
  std::shared_ptr<EventStream> events;

  // What the pipeline needs of image `index`: the prompts, seed + index, guidance, adapters,
  // image inputs.
  ImageJob Job(int index) const {
    return ImageJob{request.prompt,
                    request.prompt_2,
                    seed + static_cast<uint64_t>(index),
                    resolved.guidance_scale,
                    request.loras,
                    request.image,
                    request.mask};
  }
};

// What Engine and RequestHandle stand for: the threads (one scheduler, one worker per device, the
// encoder pool), the queues and the table of active requests, all under one mutex. Shared
// ownership so that handles and event streams can tell when it is gone.
class EngineCore : public std::enable_shared_from_this<EngineCore> {
 public:
  EngineCore(EngineOptions options, PipelineFactory factory);

  void Start();
  absl::StatusOr<RequestHandle> Submit(GenerationRequest request,
                                       std::shared_ptr<GenerationEventSink> sink);
  void Cancel(uint64_t id);
  void Drain(absl::Duration grace);
  void Stop();
  bool ready();
  absl::Status WaitUntilReady();
  std::vector<ModelStatus> ListModels();
  std::vector<std::string> Adapters(const std::string& model);
  absl::Status CheckProgress(absl::Duration limit);
  int encoder_threads() const { return encoder_threads_; }
  absl::Duration default_drain_grace() const {
    return absl::Microseconds(options_.drain_grace_micros);
  }

 private:
  using FlushList = std::vector<std::shared_ptr<EventStream>>;

  // A configured model; immutable after construction.
  struct Model {
    ModelOptions options;
    std::vector<int> workers;  // indices into workers_
  };
  struct ModelState {
    std::optional<ModelInfo> info;  // from the first worker that loaded it
    int loaded_workers = 0;
    int in_flight = 0;
    // The fastest denoising seen for this model, in milliseconds per megapixel-step of one
    // image; 0 until a (non-warm-up) batch ran: warm-ups pay for first-run set-up and would
    // overstate the cost. Admission's lower bound of a request's run time.
    double fastest_ms_per_megapixel_step = 0;
  };
  // An admitted request that has no terminal status yet.
  struct Active {
    std::shared_ptr<const Request> request;
    int images_left = 0;  // images not yet delivered (queued, running or encoding)
    bool started = false;
    RequestMetrics metrics;
  };
  enum class WorkerState { kLoading, kIdle, kBusy, kFailed };
  struct WorkerSlot {
    WorkerState state = WorkerState::kLoading;
    bool stepping = false;      // told to run iterations, not yet picked up
    bool running = false;       // inside an iteration
    absl::Time progressed;      // while running: the iteration's start or its latest step
                                // boundary or image, whichever came last
    std::string running_model;  // while running
  };
  // How far one sample (one image of a request) has come; shared by its worker and the
  // encoder jobs of its image and previews, guarded by mu_. The sample is settled (its request
  // told that the image is done, or failed) once, when it was decoded and none of its encodes
  // is pending.
  struct SampleProgress {
    bool delivered = false;   // its image was encoded and posted
    int encodes_pending = 0;  // its image and previews handed to the encoder pool, not yet done
    bool decoded = false;     // the pipeline decoded it
  };
  // One device. Immutable after construction except `pipelines` (filled by its thread while it
  // loads; only read, by any thread, once every worker is ready: PipelinesOfLocked)
  // and `thread`.
  struct Worker {
    int index = 0;
    std::string device;
    std::vector<int> models;  // indices into models_
    absl::flat_hash_set<std::string> model_names;
    absl::flat_hash_map<std::string, std::unique_ptr<Pipeline>> pipelines;
    // The samples in its running sets and how far each has come (touched only by its thread).
    absl::flat_hash_map<SampleId, std::shared_ptr<SampleProgress>> samples;
    // Request-level sets: what the observer hears when the set closes, summed over its
    // iterations (touched only by its thread).
    absl::flat_hash_map<uint64_t, BatchReport> batch_reports;
    absl::CondVar cv;  // with mu_: work was handed over, or stopping
    std::thread thread;
  };
  // One image or preview on its way through the encoder pool.
  struct EncodeJob {
    std::shared_ptr<const Request> request;
    std::shared_ptr<SampleProgress> progress;
    EventStream::Slot slot = 0;  // its place in the request's events
    RgbImage image;
    bool final_image = false;  // an image (counted as delivered), not a preview
    std::string what;          // "image 3", "the preview of image 0" (for errors)
    std::string context;       // model and device (for errors)
    std::function<EventStream::Event(std::string)> make_event;  // from the encoded bytes
  };

  enum class DrainState { kServing, kDraining, kDrained };

  // Threads.
  void SchedulerMain();
  void WorkerMain(Worker& worker);
  absl::Status LoadAndWarmUp(Worker& worker);
  absl::Status WarmUp(Worker& worker, Pipeline& pipeline, const ModelInfo& info,
                      const ModelOptions& options);
  // Runs iterations while the StepScheduler has some for the worker.
  void RunSteps(Worker& worker);
  // One iteration: releases the samples that left, starts the joiners, one step for the set,
  // previews, decodes the samples that finished.
  void RunIteration(Worker& worker, const Iteration& iteration);
  // Tells the observer of an iteration that ended with `status` after `timings` (its calls'
  // stage times; `stepped`: its denoiser call ran). Step-level: one report per iteration.
  // Request-level: the set's iterations are summed into one report per batch, told when the
  // set closed or failed. Call with no lock held.
  void ReportIteration(Worker& worker, const Iteration& iteration, int set_size,
                       const absl::Status& status, const StageTimings& timings, bool stepped,
                       double worker_ms, bool closed);
  // Fails every request with a sample in the iteration's set. Call with no lock held.
  void FailIteration(Worker& worker, const Iteration& iteration, const absl::Status& status);
  // Reserves `job`'s place in its request's events and hands it to the encoder pool (waiting
  // while the pool is full). Call with no lock held, from a worker.
  void SubmitEncode(EncodeJob job);
  // The encoder pool's job for image `index` of `request`, the sample `progress` follows: its
  // final image, or with `preview_step` its preview after that step.
  static EncodeJob MakeEncodeJob(std::shared_ptr<const Request> request,
                                 std::shared_ptr<SampleProgress> progress, int index,
                                 std::optional<int> preview_step, RgbImage image,
                                 const std::string& context);
  // Runs on an encoder thread: encodes, fills the reserved place, settles the chunk.
  void Encode(EncodeJob& job);
  // Asks `pipeline` for its device memory and hands it to the observer. Call with no lock held.
  void ReportMemory(const Worker& worker, const Pipeline& pipeline);

  // Under mu_.
  // The worker begins an iteration of `model` at `now` (CheckProgress watches it).
  void BeginRunningLocked(const Worker& worker, const std::string& model, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `active`'s images [first_image, first_image + num_images) start on `worker` at `now` in a
  // running set of `batch_size` images: the first start sets its queue time and device; posts
  // its StartedEvent.
  void StartImagesLocked(Active& active, const Worker& worker, int batch_size, int first_image,
                         int num_images, absl::Time now, FlushList* flush)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(uint64_t id, absl::Status status, FlushList* flush)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireDeadlinesLocked(absl::Time now, FlushList* flush) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextWakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportQueueDepthLocked(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportInFlightLocked(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PostLocked(uint64_t id, EventStream::Event event, FlushList* flush)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the sample's part of request `id` once it was decoded and its encodes are done:
  // INTERNAL when its image was not delivered, OK for the request after its last image.
  void SettleSampleLocked(uint64_t id, const SampleProgress& progress, const std::string& context,
                          FlushList* flush) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportEncoderBacklogLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the denoising rate of a step of `images` images of `width` x `height` that ran OK
  // (ModelState::fastest_ms_per_megapixel_step).
  void RecordDenoiseRateLocked(const std::string& model, int width, int height, int images,
                               double denoise_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsActiveLocked(uint64_t id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return active_.contains(id);
  }
  absl::Status NotReadyStatusLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Delivers events; call with no lock held.
  static void Flush(const FlushList& flush);
  // Called by an EventStream after its OnDone returned.
  void OnStreamClosed();
  void AdmissionResult(const std::string& model, const absl::Status& status);
  // The pipelines of `model` on its devices; empty unless every worker is ready (before that a
  // worker may still be filling its map).
  std::vector<Pipeline*> PipelinesOfLocked(const std::string& model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Submit's first step: validates request.loras and makes them resident on every device of
  // the model, without mu_ held during the loads. OK when there is nothing to load or when
  // admission fails for another reason (unknown model, not ready), which Submit then reports.
  absl::Status PrepareAdapters(const GenerationRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

  const EngineOptions options_;
  const PipelineFactory factory_;
  Clock* const clock_;
  EngineObserver* const observer_;
  std::vector<Model> models_;
  absl::flat_hash_map<std::string, int> model_index_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::thread scheduler_;
  const int encoder_threads_;
  // Created with the core; reset by Stop() after the workers have joined (that runs the jobs
  // still queued: their requests have ended by then, so they only drop their images).
  std::unique_ptr<EncoderPool> encoders_;

  mutable absl::Mutex mu_;
  absl::CondVar scheduler_cv_;  // the scheduler has work: a request, an idle worker, drain, stop
  absl::CondVar state_cv_;      // loading progressed, a request ended, a stream closed
  StepScheduler steps_ ABSL_GUARDED_BY(mu_);  // queued images and running sets, every model
  absl::flat_hash_map<uint64_t, Active> active_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<absl::Time, uint64_t>> deadlines_ ABSL_GUARDED_BY(mu_);  // of active_
  std::vector<WorkerSlot> slots_ ABSL_GUARDED_BY(mu_);                        // per worker
  std::vector<ModelState> model_states_ ABSL_GUARDED_BY(mu_);                 // per model
  int ready_workers_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status load_status_ ABSL_GUARDED_BY(mu_);  // the first loading error
  DrainState drain_state_ ABSL_GUARDED_BY(mu_) = DrainState::kServing;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int open_streams_ ABSL_GUARDED_BY(mu_) = 0;     // admitted requests whose OnDone has not returned
  int encoder_backlog_ ABSL_GUARDED_BY(mu_) = 0;  // encode jobs submitted and not finished
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tlcm::engine::internal
