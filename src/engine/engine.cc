#include "engine/engine.h"

#include <algorithm>
#include <exception>
#include <new>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "engine/batch_queue.h"
#include "engine/encoder_pool.h"
#include "engine/event_stream.h"
#include "engine/step_scheduler.h"
#include "util/client_text.h"
#include "util/status_macros.h"

namespace tlcm::engine {
namespace internal {
namespace {

double Millis(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// `status` with `context` in front of its message.
absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// The one place where a worker turns exceptions from pipeline code (the factory, Run and
// everything Run calls back) into statuses: out of memory -> RESOURCE_EXHAUSTED, anything else
// -> INTERNAL. Only the first line of the exception text is kept (LibTorch appends backtraces).
template <typename T, typename F>
absl::StatusOr<T> GuardedCall(F&& call) {
  try {
    return call();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of host memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    if (what.find("out of memory") != std::string::npos) {
      return absl::ResourceExhaustedError(what);
    }
    return absl::InternalError(absl::StrCat("exception: ", what));
  } catch (...) {
    return absl::InternalError("exception of unknown type");
  }
}

// What the observer hears about one Run of `batch_size` images on `device`.
BatchReport MakeBatchReport(const std::string& device, int worker, const BatchKey& key,
                            int batch_size, const absl::StatusOr<StageTimings>& timings,
                            double worker_ms) {
  BatchReport report;
  report.model = key.model;
  report.device = device;
  report.worker = worker;
  report.batch_size = batch_size;
  report.steps = key.steps;
  report.width = key.width;
  report.height = key.height;
  report.status = timings.status();
  report.worker_ms = worker_ms;
  if (timings.ok()) {
    report.text_encode_ms = timings->text_encode_ms;
    report.denoise_ms = timings->denoise_ms;
    report.decode_ms = timings->decode_ms;
    report.step_ms = key.steps > 0 ? timings->denoise_ms / key.steps : 0;
    report.prompt_cache_hits = timings->prompt_cache_hits;
    report.prompt_cache_misses = timings->prompt_cache_misses;
  }
  return report;
}

// Width x height in megapixels, times steps and images: the work of a request.
double MegapixelSteps(const BatchKey& key, int images) {
  return static_cast<double>(key.width) * key.height / 1e6 * key.steps * images;
}

// Random seeds stay below 2^53 so that clients holding numbers as doubles (JSON) keep them exact.
constexpr uint64_t kRandomSeedLimit = uint64_t{1} << 53;

// How many decoded images may wait for an encoder thread: room for two of the largest batches,
// and at least 4 per thread. Beyond it the device worker waits (bounds host memory: a 1024x1024
// image is 3 MB) instead of running ahead of encoding.
int EncoderQueueLimit(const EngineOptions& options, int encoder_threads) {
  int limit = 4 * encoder_threads;
  for (const ModelOptions& model : options.models) {
    limit = std::max(limit, 2 * model.batching.max_batch_size);
  }
  return limit;
}

}  // namespace

// A request as admitted. Immutable; shared by the active table and the batches running it.
struct Request {
  uint64_t id = 0;
  GenerationRequest request;
  ResolvedRequest resolved;
  uint64_t seed = 0;
  absl::Time admitted;
  std::shared_ptr<EventStream> events;
};

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
    int chunks_left = 0;  // chunks queued or running
    bool started = false;
    RequestMetrics metrics;
  };
  enum class WorkerState { kLoading, kIdle, kBusy, kFailed };
  struct WorkerSlot {
    WorkerState state = WorkerState::kLoading;
    std::optional<Batch> assigned;  // handed over by the scheduler, not yet picked up
    bool stepping = false;          // told to run step-level iterations, not yet picked up
    bool running = false;           // inside RunBatch
    absl::Time progressed;          // while running: the batch's start or its latest step
                                    // boundary or image, whichever came last
    std::string running_model;      // while running
  };
  // How far one chunk of a running batch (or one step-level sample: a chunk of one image) has
  // come; shared by its worker and the encoder jobs of its images, guarded by mu_. The chunk is
  // settled (its request told that the chunk ended, or failed) once, when its Run has returned
  // (its sample was decoded) and none of its encodes is pending.
  struct ChunkProgress {
    int delivered = 0;        // images encoded and posted
    int encodes_pending = 0;  // images and previews handed to the encoder pool, not yet done
    bool run_done = false;    // the batch's Run returned OK / the sample was decoded
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
    // The step-level samples in its running sets and how far each has come (touched only by its
    // thread).
    absl::flat_hash_map<SampleId, std::shared_ptr<ChunkProgress>> samples;
    absl::CondVar cv;  // with mu_: a batch was assigned, or stopping
    std::thread thread;
  };
  // One chunk of a running batch.
  struct LiveChunk {
    QueuedChunk chunk;
    std::shared_ptr<const Request> request;
    std::shared_ptr<ChunkProgress> progress;
  };
  // One image or preview on its way through the encoder pool.
  struct EncodeJob {
    std::shared_ptr<const Request> request;
    std::shared_ptr<ChunkProgress> progress;
    int chunk_images = 0;        // the chunk's num_images (for settling)
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
  void RunBatch(Worker& worker, const Batch& batch);
  // Step-level: runs iterations while the StepScheduler has some for the worker and no
  // request-level batch is ready for it.
  void RunSteps(Worker& worker);
  // One iteration: releases the samples that left, starts the joiners, one step for the set,
  // previews, decodes the samples that finished.
  void RunIteration(Worker& worker, const Iteration& iteration);
  // Fails every request with a sample in the iteration's set. Call with no lock held.
  void FailIteration(Worker& worker, const Iteration& iteration, const absl::Status& status);
  // Reserves `job`'s place in its request's events and hands it to the encoder pool (waiting
  // while the pool is full). Call with no lock held, from a worker.
  void SubmitEncode(EncodeJob job);
  // Runs on an encoder thread: encodes, fills the reserved place, settles the chunk.
  void Encode(EncodeJob& job);
  // Asks `pipeline` for its device memory and hands it to the observer. Call with no lock held.
  void ReportMemory(const Worker& worker, const Pipeline& pipeline);

  // Under mu_.
  void FinishLocked(uint64_t id, absl::Status status, FlushList* flush)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireDeadlinesLocked(absl::Time now, FlushList* flush) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextWakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportQueueDepthLocked(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportInFlightLocked(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PostLocked(uint64_t id, EventStream::Event event, FlushList* flush)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the chunk's part of request `id` once its Run has returned and its encodes are done:
  // INTERNAL when fewer than `images` were delivered, OK for the request after its last chunk.
  void SettleChunkLocked(uint64_t id, const ChunkProgress& progress, int images,
                         const std::string& context, FlushList* flush)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportEncoderBacklogLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the denoising rate of a batch that ran OK (ModelState::fastest_ms_per_megapixel_step).
  void RecordDenoiseRateLocked(const BatchKey& key, int images, const StageTimings& timings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
  BatchQueue queue_ ABSL_GUARDED_BY(mu_);     // models in BatchingMode::kRequest
  StepScheduler steps_ ABSL_GUARDED_BY(mu_);  // models in BatchingMode::kStep
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

EngineCore::EngineCore(EngineOptions options, PipelineFactory factory)
    : options_(std::move(options)),
      factory_(std::move(factory)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      observer_(options_.observer),
      encoder_threads_(EncoderPool::ThreadsFor(options_.encoder_threads)),
      encoders_(std::make_unique<EncoderPool>(encoder_threads_,
                                              EncoderQueueLimit(options_, encoder_threads_))) {
  for (size_t d = 0; d < options_.devices.size(); ++d) {
    auto worker = std::make_unique<Worker>();
    worker->index = static_cast<int>(d);
    worker->device = options_.devices[d];
    workers_.push_back(std::move(worker));
  }
  absl::MutexLock lock(&mu_);
  for (size_t m = 0; m < options_.models.size(); ++m) {
    const ModelOptions& model_options = options_.models[m];
    Model model;
    model.options = model_options;
    for (auto& worker : workers_) {
      const auto& devices = model_options.devices;
      if (devices.empty() ||
          std::find(devices.begin(), devices.end(), worker->device) != devices.end()) {
        model.workers.push_back(worker->index);
        worker->models.push_back(static_cast<int>(m));
        worker->model_names.insert(model_options.spec.name);
      }
    }
    model_index_[model_options.spec.name] = static_cast<int>(m);
    models_.push_back(std::move(model));
    const BatchingOptions& batching = model_options.batching;
    if (batching.mode == BatchingMode::kStep) {
      steps_.AddModel(model_options.spec.name, {batching.max_batch_size, batching.max_queue_size});
    } else {
      queue_.AddModel(model_options.spec.name, batching.max_batch_size,
                      absl::Microseconds(batching.max_queue_delay_micros), batching.max_queue_size);
    }
  }
  for (const auto& worker : workers_) {
    steps_.AddWorker({worker->model_names.begin(), worker->model_names.end()});
  }
  slots_.resize(workers_.size());
  model_states_.resize(models_.size());
}

void EngineCore::Start() {
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->thread = std::thread([this, w] { WorkerMain(*w); });
  }
  scheduler_ = std::thread([this] { SchedulerMain(); });
}

// ---------------------------------------------------------------------------------------------
// Admission

absl::Status EngineCore::NotReadyStatusLocked() const {
  if (drain_state_ != DrainState::kServing) {
    return absl::UnavailableError("the engine is shutting down and accepts no new requests");
  }
  if (!load_status_.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the engine failed to load its models: ", load_status_.message()));
  }
  return absl::UnavailableError("the engine is still loading and warming up its models");
}

void EngineCore::AdmissionResult(const std::string& model, const absl::Status& status) {
  if (observer_ != nullptr) observer_->OnAdmission(model, status);
}

std::vector<Pipeline*> EngineCore::PipelinesOfLocked(const std::string& model) {
  std::vector<Pipeline*> out;
  auto model_it = model_index_.find(model);
  if (model_it == model_index_.end() || ready_workers_ < static_cast<int>(workers_.size()) ||
      !load_status_.ok()) {
    return out;
  }
  for (int w : models_[model_it->second].workers) {
    auto it = workers_[w]->pipelines.find(model);
    if (it != workers_[w]->pipelines.end()) out.push_back(it->second.get());
  }
  return out;
}

absl::Status EngineCore::PrepareAdapters(const GenerationRequest& request) {
  if (request.loras.empty()) return absl::OkStatus();
  std::vector<Pipeline*> pipelines;
  {
    absl::MutexLock lock(&mu_);
    pipelines = PipelinesOfLocked(request.model);
    // Unknown model, not ready: Submit answers that. Bad entries fail before any load.
    if (pipelines.empty()) return absl::OkStatus();
    TLCM_RETURN_IF_ERROR(
        ValidateLoras(request.loras, *model_states_[model_index_.at(request.model)].info));
  }
  // Without mu_: a load reads a file and copies it to a device while batches run.
  for (Pipeline* pipeline : pipelines) {
    TLCM_RETURN_IF_ERROR(pipeline->PrepareAdapters(request.loras));
  }
  return absl::OkStatus();
}

std::vector<std::string> EngineCore::Adapters(const std::string& model) {
  std::vector<Pipeline*> pipelines;
  {
    absl::MutexLock lock(&mu_);
    pipelines = PipelinesOfLocked(model);
  }
  return pipelines.empty() ? std::vector<std::string>() : pipelines.front()->AdapterNames();
}

absl::StatusOr<RequestHandle> EngineCore::Submit(GenerationRequest request,
                                                 std::shared_ptr<GenerationEventSink> sink) {
  FlushList flush;
  RequestHandle handle;
  if (absl::Status prepared = PrepareAdapters(request); !prepared.ok()) {
    absl::MutexLock lock(&mu_);
    AdmissionResult(model_index_.count(request.model) ? request.model : "", prepared);
    return prepared;
  }
  {
    absl::MutexLock lock(&mu_);
    auto model_it = model_index_.find(request.model);
    const std::string known_model = model_it == model_index_.end() ? "" : request.model;
    if (drain_state_ != DrainState::kServing ||
        ready_workers_ < static_cast<int>(workers_.size()) || !load_status_.ok()) {
      absl::Status status = NotReadyStatusLocked();
      AdmissionResult(known_model, status);
      return status;
    }
    if (model_it == model_index_.end()) {
      std::vector<std::string> names;
      for (const Model& m : models_) names.push_back(m.options.spec.name);
      absl::Status status = absl::NotFoundError(
          absl::StrCat("model: ", QuoteClientText(request.model),
                       " is not served here (models: ", absl::StrJoin(names, ", "), ")"));
      AdmissionResult(known_model, status);
      return status;
    }
    const int model_id = model_it->second;
    const Model& model = models_[model_id];
    absl::StatusOr<ResolvedRequest> resolved =
        ValidateRequest(request, *model_states_[model_id].info, model.options.limits);
    if (!resolved.ok()) {
      AdmissionResult(known_model, resolved.status());
      return resolved.status();
    }
    if (sink == nullptr) {
      absl::Status status = absl::InvalidArgumentError("sink: must not be null");
      AdmissionResult(known_model, status);
      return status;
    }
    const absl::Time now = clock_->Now();
    if (request.deadline <= now) {
      absl::Status status = absl::DeadlineExceededError("the deadline passed before admission");
      AdmissionResult(known_model, status);
      return status;
    }
    // A request that could not finish in time even at the fastest rate seen fails now, instead
    // of holding a device for nothing.
    if (const double rate = model_states_[model_id].fastest_ms_per_megapixel_step;
        rate > 0 && request.deadline != absl::InfiniteFuture()) {
      const double megapixel_steps = MegapixelSteps(resolved->key, request.num_images);
      const absl::Duration needed = absl::Milliseconds(megapixel_steps * rate);
      if (now + needed > request.deadline) {
        absl::Status status = absl::DeadlineExceededError(absl::StrCat(
            "the request needs at least ",
            absl::FormatDuration(absl::Trunc(needed, absl::Milliseconds(1))),
            " of denoising on this model (", request.num_images, " x ", resolved->key.width, "x",
            resolved->key.height, " x ", resolved->key.steps, " steps at the fastest rate seen, ",
            absl::StrFormat("%.3g", rate), " ms per megapixel-step); its deadline leaves ",
            absl::FormatDuration(absl::Trunc(request.deadline - now, absl::Milliseconds(1)))));
        AdmissionResult(known_model, status);
        return status;
      }
    }
    const uint64_t id = next_id_;
    int position = 0;
    int chunks = 0;
    if (model.options.batching.mode == BatchingMode::kStep) {
      const BatchKey& key = resolved->key;
      absl::StatusOr<int> queued = steps_.Enqueue(
          id, SampleShape{key.model, key.width, key.height, key.steps, resolved->start_step},
          request.num_images, now);
      if (!queued.ok()) {
        AdmissionResult(known_model, queued.status());
        return queued.status();
      }
      position = *queued;
      chunks = request.num_images;  // every image is a sample of its own
    } else {
      absl::StatusOr<BatchQueue::Admission> admission =
          queue_.Enqueue(resolved->key, id, request.num_images, now);
      if (!admission.ok()) {
        AdmissionResult(known_model, admission.status());
        return admission.status();
      }
      position = admission->position;
      chunks = admission->num_chunks;
    }
    ++next_id_;

    auto admitted = std::make_shared<Request>();
    admitted->id = id;
    admitted->seed = request.seed.has_value()
                         ? *request.seed
                         : absl::Uniform<uint64_t>(bitgen_, 0, kRandomSeedLimit);
    admitted->resolved = *std::move(resolved);
    admitted->admitted = now;
    admitted->request = std::move(request);
    std::weak_ptr<EngineCore> weak_core = weak_from_this();
    admitted->events = std::make_shared<EventStream>(std::move(sink), [weak_core] {
      if (auto core = weak_core.lock()) core->OnStreamClosed();
    });

    Active& active = active_[id];
    active.request = admitted;
    active.chunks_left = chunks;
    if (admitted->request.deadline != absl::InfiniteFuture()) {
      deadlines_.emplace(admitted->request.deadline, id);
    }
    ++open_streams_;
    ++model_states_[model_id].in_flight;
    const std::string& name = admitted->request.model;
    ReportQueueDepthLocked(name);
    ReportInFlightLocked(name);
    AdmissionResult(name, absl::OkStatus());
    PostLocked(
        id, [position](GenerationEventSink& s) { s.OnQueued(position); }, &flush);
    scheduler_cv_.Signal();
    handle = RequestHandle(weak_from_this(), id, admitted->seed);
  }
  Flush(flush);
  return handle;
}

void EngineCore::Cancel(uint64_t id) {
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    FinishLocked(id, absl::CancelledError("cancelled by the client"), &flush);
  }
  Flush(flush);
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping under mu_

void EngineCore::ReportQueueDepthLocked(const std::string& model) {
  if (observer_ != nullptr) {
    observer_->OnQueueDepth(model, queue_.queued_requests(model) + steps_.queued_requests(model));
  }
}

void EngineCore::ReportInFlightLocked(const std::string& model) {
  if (observer_ != nullptr) {
    observer_->OnInFlight(model, model_states_[model_index_.at(model)].in_flight);
  }
}

void EngineCore::PostLocked(uint64_t id, EventStream::Event event, FlushList* flush) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  const auto& events = it->second.request->events;
  events->Post(std::move(event));
  flush->push_back(events);
}

void EngineCore::FinishLocked(uint64_t id, absl::Status status, FlushList* flush) {
  auto it = active_.find(id);
  if (it == active_.end()) return;  // already terminal
  Active& active = it->second;
  const Request& request = *active.request;
  const std::string& model = request.request.model;
  // Queued images go at once; running step-level samples leave at their set's next iteration.
  const int queued_images = queue_.Remove(id) + steps_.Remove(id);
  if (queued_images > 0) ReportQueueDepthLocked(model);
  if (request.request.deadline != absl::InfiniteFuture()) {
    deadlines_.erase({request.request.deadline, id});
  }
  RequestMetrics metrics = std::move(active.metrics);
  metrics.total_ms = Millis(clock_->Now() - request.admitted);
  if (observer_ != nullptr) observer_->OnRequestDone(model, status, metrics);
  request.events->PostDone(std::move(status), std::move(metrics));
  flush->push_back(request.events);
  --model_states_[model_index_.at(model)].in_flight;
  ReportInFlightLocked(model);
  active_.erase(it);
  state_cv_.SignalAll();
}

void EngineCore::ExpireDeadlinesLocked(absl::Time now, FlushList* flush) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const uint64_t id = deadlines_.begin()->second;
    const bool started = active_.at(id).started;
    FinishLocked(id,
                 absl::DeadlineExceededError(started ? "the deadline passed while running"
                                                     : "the deadline passed while queued"),
                 flush);
  }
}

void EngineCore::DispatchLocked(absl::Time now) {
  const bool flush_all = drain_state_ != DrainState::kServing;
  for (auto& worker : workers_) {
    WorkerSlot& slot = slots_[worker->index];
    if (slot.state != WorkerState::kIdle) continue;
    Batch batch;
    const auto eligible = [&](const std::string& m) { return worker->model_names.contains(m); };
    if (!queue_.TakeReadyBatch(now, flush_all, eligible, &batch)) {
      if (steps_.HasWork(worker->index)) {
        slot.stepping = true;
        slot.state = WorkerState::kBusy;
        worker->cv.Signal();
      }
      continue;
    }
    const std::string model = batch.key.model;
    slot.assigned = std::move(batch);
    slot.state = WorkerState::kBusy;
    worker->cv.Signal();
    ReportQueueDepthLocked(model);
  }
}

absl::Time EngineCore::NextWakeLocked() {
  absl::Time wake = deadlines_.empty() ? absl::InfiniteFuture() : deadlines_.begin()->first;
  const bool flush_all = drain_state_ != DrainState::kServing;
  for (auto& worker : workers_) {
    if (slots_[worker->index].state != WorkerState::kIdle) continue;
    const auto eligible = [&](const std::string& m) { return worker->model_names.contains(m); };
    wake = std::min(wake, queue_.NextReadyTime(flush_all, eligible));
  }
  return wake;
}

void EngineCore::Flush(const FlushList& flush) {
  for (const auto& events : flush) events->Flush();
}

void EngineCore::OnStreamClosed() {
  absl::MutexLock lock(&mu_);
  --open_streams_;
  state_cv_.SignalAll();
}

// ---------------------------------------------------------------------------------------------
// The scheduler thread: deadlines of queued and running requests, and handing ready batches to
// idle workers. The only place that waits on the clock besides Drain.

void EngineCore::SchedulerMain() {
  mu_.Lock();
  while (!stopping_) {
    const absl::Time now = clock_->Now();
    FlushList flush;
    ExpireDeadlinesLocked(now, &flush);
    DispatchLocked(now);
    if (!flush.empty()) {
      mu_.Unlock();
      Flush(flush);
      mu_.Lock();
      continue;
    }
    clock_->WaitUntil(&scheduler_cv_, &mu_, NextWakeLocked());
  }
  mu_.Unlock();
}

// ---------------------------------------------------------------------------------------------
// Workers

void EngineCore::WorkerMain(Worker& worker) {
  const absl::Status loaded = LoadAndWarmUp(worker);
  {
    absl::MutexLock lock(&mu_);
    if (loaded.ok()) {
      slots_[worker.index].state = WorkerState::kIdle;
      ++ready_workers_;
    } else {
      slots_[worker.index].state = WorkerState::kFailed;
      if (load_status_.ok()) load_status_ = loaded;
    }
    if (observer_ != nullptr) observer_->OnWorkerReady(worker.device, worker.index, loaded);
    state_cv_.SignalAll();
    scheduler_cv_.Signal();
  }
  if (!loaded.ok()) return;
  while (true) {
    std::optional<Batch> batch;
    {
      absl::MutexLock lock(&mu_);
      WorkerSlot& slot = slots_[worker.index];
      while (!stopping_ && !slot.assigned.has_value() && !slot.stepping) worker.cv.Wait(&mu_);
      if (stopping_) return;  // every request is terminal by now (Stop follows Drain)
      batch = std::move(slot.assigned);
      slot.assigned.reset();
      slot.stepping = false;
    }
    if (batch.has_value()) {
      RunBatch(worker, *batch);
    } else {
      RunSteps(worker);
    }
    absl::MutexLock lock(&mu_);
    slots_[worker.index].state = WorkerState::kIdle;
    scheduler_cv_.Signal();
  }
}

absl::Status EngineCore::LoadAndWarmUp(Worker& worker) {
  for (int model_id : worker.models) {
    const ModelOptions& options = models_[model_id].options;
    const std::string context =
        absl::StrCat("loading model \"", options.spec.name, "\" on ", worker.device);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::UnavailableError(absl::StrCat(context, ": engine stopped"));
    }
    absl::StatusOr<std::unique_ptr<Pipeline>> created = GuardedCall<std::unique_ptr<Pipeline>>(
        [&] { return factory_(options.spec, worker.device); });
    if (!created.ok()) return Annotate(created.status(), context);
    if (*created == nullptr) {
      return absl::InternalError(absl::StrCat(context, ": the factory returned no pipeline"));
    }
    if (options.batching.mode == BatchingMode::kStep && (*created)->stepper() == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(context,
                       ": batching mode \"step\" needs a pipeline that runs step by "
                       "step, and this one only runs whole batches"));
    }
    ModelInfo info = (*created)->info();
    info.name = options.spec.name;
    if (info.size_multiple < 1 || info.min_steps < 1 || info.min_steps > info.max_steps ||
        info.default_steps < info.min_steps || info.default_steps > info.max_steps ||
        info.default_width < 1 || info.default_height < 1 || info.max_pixels < 1) {
      return absl::InternalError(
          absl::StrCat(context, ": the pipeline reports inconsistent limits (size_multiple ",
                       info.size_multiple, ", steps ", info.min_steps, "..", info.max_steps,
                       " default ", info.default_steps, ", default size ", info.default_width, "x",
                       info.default_height, ", max_pixels ", info.max_pixels, ")"));
    }
    if (options.warmup) {
      absl::Status warm = WarmUp(worker, **created, info, options);
      if (!warm.ok()) {
        return Annotate(
            warm, absl::StrCat("warming up model \"", options.spec.name, "\" on ", worker.device));
      }
    }
    worker.pipelines[options.spec.name] = *std::move(created);
    absl::MutexLock lock(&mu_);
    ModelState& state = model_states_[model_id];
    if (!state.info.has_value()) state.info = info;
    ++state.loaded_workers;
  }
  return absl::OkStatus();
}

absl::Status EngineCore::WarmUp(Worker& worker, Pipeline& pipeline, const ModelInfo& info,
                                const ModelOptions& options) {
  BatchKey key;
  key.model = info.name;
  key.steps = options.warmup_steps > 0 ? options.warmup_steps : info.min_steps;
  key.width = options.warmup_width > 0 ? options.warmup_width : info.default_width;
  key.height = options.warmup_height > 0 ? options.warmup_height : info.default_height;
  key.sampler = info.samplers.empty() ? "" : info.samplers.front();
  ImageJob job;
  job.prompt = "warm-up";
  job.seed = 0;
  job.guidance_scale = info.default_guidance_scale;
  BatchCallbacks callbacks;
  callbacks.should_drop = [this](size_t) {
    absl::MutexLock lock(&mu_);
    return stopping_;
  };
  callbacks.on_step = [](int, int) {};
  callbacks.wants_preview = [](size_t) { return false; };
  callbacks.on_preview = [](size_t, int, const RgbImage&) {};
  callbacks.on_image = [](size_t, const RgbImage&) {};
  absl::StatusOr<StageTimings> timings =
      GuardedCall<StageTimings>([&] { return pipeline.Run(key, {job}, callbacks); });
  ReportMemory(worker, pipeline);
  if (observer_ != nullptr) {
    absl::MutexLock lock(&mu_);
    observer_->OnBatchDone(MakeBatchReport(worker.device, worker.index, key, 1, timings,
                                           /*worker_ms=*/0),
                           /*warmup=*/true);
  }
  return timings.status();
}

void EngineCore::RunBatch(Worker& worker, const Batch& batch) {
  const BatchKey& key = batch.key;
  const std::string context = absl::StrCat("model \"", key.model, "\" on ", worker.device);
  const absl::Time started_at = clock_->Now();
  std::vector<LiveChunk> live;
  std::vector<std::pair<size_t, int>> job_owner;  // job -> (live chunk, image index)
  std::vector<ImageJob> jobs;
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    WorkerSlot& slot = slots_[worker.index];
    slot.running = true;
    slot.progressed = started_at;
    slot.running_model = key.model;
    for (const QueuedChunk& chunk : batch.chunks) {
      auto it = active_.find(chunk.request_id);
      if (it == active_.end()) continue;  // ended between dispatch and here
      live.push_back(LiveChunk{chunk, it->second.request, std::make_shared<ChunkProgress>()});
    }
    int batch_size = 0;
    for (const LiveChunk& c : live) batch_size += c.chunk.num_images;
    for (size_t l = 0; l < live.size(); ++l) {
      const LiveChunk& c = live[l];
      const Request& r = *c.request;
      Active& active = active_.at(r.id);
      if (!active.started) {
        active.started = true;
        active.metrics.queue_ms = Millis(started_at - r.admitted);
        active.metrics.device = worker.device;
      }
      ++active.metrics.num_batches;
      active.metrics.batch_size = std::max(active.metrics.batch_size, batch_size);
      StartedEvent started{worker.device, worker.index, batch_size, c.chunk.first_image,
                           c.chunk.num_images};
      PostLocked(
          r.id, [started](GenerationEventSink& s) { s.OnStarted(started); }, &flush);
      for (int i = c.chunk.first_image; i < c.chunk.first_image + c.chunk.num_images; ++i) {
        ImageJob job;
        job.prompt = r.request.prompt;
        job.prompt_2 = r.request.prompt_2;
        job.seed = r.seed + static_cast<uint64_t>(i);
        job.guidance_scale = r.resolved.guidance_scale;
        job.loras = r.request.loras;
        job.image = r.request.image;
        job.mask = r.request.mask;
        jobs.push_back(std::move(job));
        job_owner.emplace_back(l, i);
      }
    }
  }
  Flush(flush);
  // The worker is busy until here even when every chunk ended before it started.
  const auto finish_running = [&] {
    absl::MutexLock lock(&mu_);
    slots_[worker.index].running = false;
  };
  if (live.empty()) {
    finish_running();
    return;
  }

  // Hands `image` of `job` to the encoder pool; what the sink gets is `make_event` of the bytes.
  const auto encode = [&](size_t job, RgbImage image, std::string what, bool final_image,
                          std::function<EventStream::Event(std::string)> make_event) {
    const LiveChunk& chunk = live[job_owner[job].first];
    EncodeJob encode_job{chunk.request,        chunk.progress, chunk.chunk.num_images, 0,
                         std::move(image),     final_image,    std::move(what),        context,
                         std::move(make_event)};
    SubmitEncode(std::move(encode_job));
  };

  BatchCallbacks callbacks;
  callbacks.should_drop = [&](size_t job) {
    const Request& r = *live[job_owner[job].first].request;
    FlushList flush;
    bool drop = false;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = clock_->Now();
      slots_[worker.index].progressed = now;
      if (!IsActiveLocked(r.id)) {
        drop = true;
      } else if (now >= r.request.deadline) {
        FinishLocked(r.id, absl::DeadlineExceededError("the deadline passed while running"),
                     &flush);
        drop = true;
      }
    }
    Flush(flush);
    return drop;
  };
  callbacks.on_step = [&](int step, int total) {
    FlushList flush;
    {
      absl::MutexLock lock(&mu_);
      slots_[worker.index].progressed = clock_->Now();
      for (const LiveChunk& c : live) {
        StepEvent event{step, total, c.chunk.first_image, c.chunk.num_images};
        PostLocked(
            c.request->id, [event](GenerationEventSink& s) { s.OnStep(event); }, &flush);
      }
    }
    Flush(flush);
  };
  callbacks.wants_preview = [&](size_t job) {
    const Request& r = *live[job_owner[job].first].request;
    if (!r.request.previews) return false;
    absl::MutexLock lock(&mu_);
    return IsActiveLocked(r.id);
  };
  callbacks.on_preview = [&](size_t job, int step, RgbImage preview) {
    const Request& r = *live[job_owner[job].first].request;
    const int index = job_owner[job].second;
    const int width = preview.width, height = preview.height;
    const ImageFormat format = r.request.format;
    encode(job, std::move(preview), absl::StrCat("the preview of image ", index),
           /*final_image=*/false, [=](std::string bytes) -> EventStream::Event {
             PreviewEvent event{index, step, std::move(bytes), width, height, format};
             return [event = std::move(event)](GenerationEventSink& s) mutable {
               s.OnPreview(std::move(event));
             };
           });
  };
  callbacks.on_image = [&](size_t job, RgbImage image) {
    const Request& r = *live[job_owner[job].first].request;
    const int index = job_owner[job].second;
    const int width = image.width, height = image.height;
    const ImageFormat format = r.request.format;
    const uint64_t seed = r.seed + static_cast<uint64_t>(index);
    {
      absl::MutexLock lock(&mu_);
      slots_[worker.index].progressed = clock_->Now();
    }
    encode(job, std::move(image), absl::StrCat("image ", index), /*final_image=*/true,
           [=](std::string bytes) -> EventStream::Event {
             GeneratedImage event{index, seed, std::move(bytes), width, height, format};
             return [event = std::move(event)](GenerationEventSink& s) mutable {
               s.OnImage(std::move(event));
             };
           });
  };

  Pipeline& pipeline = *worker.pipelines.at(key.model);
  const absl::StatusOr<StageTimings> timings =
      GuardedCall<StageTimings>([&] { return pipeline.Run(key, jobs, callbacks); });
  ReportMemory(worker, pipeline);

  {
    absl::MutexLock lock(&mu_);
    slots_[worker.index].running = false;
    if (timings.ok()) RecordDenoiseRateLocked(key, static_cast<int>(jobs.size()), *timings);
    if (observer_ != nullptr) {
      observer_->OnBatchDone(
          MakeBatchReport(worker.device, worker.index, key, static_cast<int>(jobs.size()), timings,
                          Millis(clock_->Now() - started_at)),
          /*warmup=*/false);
    }
    for (const LiveChunk& c : live) {
      auto it = active_.find(c.request->id);
      if (it == active_.end()) continue;  // ended while running (cancel, deadline, drain)
      Active& active = it->second;
      if (!timings.ok()) {
        FinishLocked(c.request->id, Annotate(timings.status(), context), &flush);
        continue;
      }
      active.metrics.text_encode_ms += timings->text_encode_ms;
      active.metrics.denoise_ms += timings->denoise_ms;
      active.metrics.decode_ms += timings->decode_ms;
      c.progress->run_done = true;
      SettleChunkLocked(c.request->id, *c.progress, c.chunk.num_images, context, &flush);
    }
  }
  Flush(flush);
}

// ---------------------------------------------------------------------------------------------
// Step-level batching: iterations on a worker

void EngineCore::RunSteps(Worker& worker) {
  const auto eligible = [&](const std::string& m) { return worker.model_names.contains(m); };
  while (true) {
    Iteration iteration;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      const absl::Time now = clock_->Now();
      // A request-level batch that is ready goes first: the worker turns idle, the scheduler
      // thread hands the batch over, and the sets go on after it.
      if (queue_.NextReadyTime(drain_state_ != DrainState::kServing, eligible) <= now) return;
      if (!steps_.Schedule(worker.index, now, &iteration)) return;
      if (!iteration.joined.empty()) ReportQueueDepthLocked(iteration.model);
    }
    RunIteration(worker, iteration);
  }
}

void EngineCore::FailIteration(Worker& worker, const Iteration& iteration,
                               const absl::Status& status) {
  std::vector<SampleId> samples;
  for (const ScheduledSample& s : iteration.stepping) samples.push_back(s.id);
  for (const SampleId& id : samples) worker.samples.erase(id);
  // The pipeline has released the samples of the failed call; these are the rest of the set.
  worker.pipelines.at(iteration.model)->stepper()->Release(samples);
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    const std::string context = absl::StrCat("model \"", iteration.model, "\" on ", worker.device);
    for (uint64_t id : steps_.Fail(iteration)) FinishLocked(id, Annotate(status, context), &flush);
  }
  Flush(flush);
}

void EngineCore::RunIteration(Worker& worker, const Iteration& iteration) {
  SampleStepper& stepper = *worker.pipelines.at(iteration.model)->stepper();
  const std::string context = absl::StrCat("model \"", iteration.model, "\" on ", worker.device);
  const absl::Time started_at = clock_->Now();
  const int set_size = static_cast<int>(iteration.stepping.size());
  // The requests of the set's samples (shared: they outlive a request's end while encoding).
  absl::flat_hash_map<uint64_t, std::shared_ptr<const Request>> requests;
  std::vector<SampleSpec> joiners;
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    WorkerSlot& slot = slots_[worker.index];
    slot.running = true;
    slot.progressed = started_at;
    slot.running_model = iteration.model;
    for (const ScheduledSample& s : iteration.stepping) {
      auto it = active_.find(s.id.request_id);
      if (it == active_.end()) continue;  // ended since Schedule: leaves at the next iteration
      Active& active = it->second;
      requests.emplace(s.id.request_id, active.request);
      active.metrics.batch_size = std::max(active.metrics.batch_size, set_size);
    }
    for (const ScheduledSample& s : iteration.joined) {
      auto it = active_.find(s.id.request_id);
      if (it == active_.end()) continue;
      Active& active = it->second;
      const Request& r = *active.request;
      if (!active.started) {
        active.started = true;
        active.metrics.queue_ms = Millis(started_at - r.admitted);
        active.metrics.device = worker.device;
      }
      ++active.metrics.num_batches;
      StartedEvent started{worker.device, worker.index, set_size, s.id.image, 1};
      PostLocked(
          r.id, [started](GenerationEventSink& sink) { sink.OnStarted(started); }, &flush);
      ImageJob job{r.request.prompt,
                   r.request.prompt_2,
                   r.seed + static_cast<uint64_t>(s.id.image),
                   r.resolved.guidance_scale,
                   r.request.loras,
                   r.request.image,
                   r.request.mask};
      joiners.push_back(SampleSpec{s.id, std::move(job), s.steps, r.resolved.key.sampler,
                                   r.resolved.key.strength});
    }
  }
  Flush(flush);
  const auto finish_running = [&] {
    absl::MutexLock lock(&mu_);
    slots_[worker.index].running = false;
  };

  // 1. Samples that left (cancelled, expired, failed elsewhere) free their state.
  for (const SampleId& id : iteration.left) worker.samples.erase(id);
  if (!iteration.left.empty()) stepper.Release(iteration.left);
  // 2. Joiners: prompt encoding and initial latents. (A joiner whose request ended since
  // Schedule does not start; it leaves at the next iteration.)
  StageTimings start_timings;
  if (!joiners.empty()) {
    for (const SampleSpec& spec : joiners) {
      worker.samples[spec.id] = std::make_shared<ChunkProgress>();
    }
    absl::StatusOr<StageTimings> started = GuardedCall<StageTimings>(
        [&] { return stepper.Start(iteration.width, iteration.height, joiners); });
    if (!started.ok()) {
      finish_running();
      FailIteration(worker, iteration, started.status());
      return;
    }
    start_timings = *started;
  }
  // 3. One denoiser call for the set (the samples that started); it stops inside once no
  // sample of it is wanted.
  std::vector<SampleId> set;
  for (const ScheduledSample& s : iteration.stepping) {
    if (worker.samples.contains(s.id)) set.push_back(s.id);
  }
  StageTimings step_timings;
  if (!set.empty()) {
    const auto interrupt = [&] {
      absl::MutexLock lock(&mu_);
      for (const SampleId& id : set) {
        if (IsActiveLocked(id.request_id)) return false;
      }
      return true;
    };
    absl::StatusOr<StageTimings> stepped =
        GuardedCall<StageTimings>([&] { return stepper.Step(set, interrupt); });
    if (!stepped.ok() && !absl::IsCancelled(stepped.status())) {
      finish_running();
      FailIteration(worker, iteration, stepped.status());
      return;
    }
    if (stepped.ok()) step_timings = *stepped;
  }

  // 4. Bookkeeping: step events, stage times, who finished.
  const BatchKey key{iteration.model, 1, iteration.width, iteration.height, ""};
  StepOutcome outcome;
  FlushList step_flush;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    slots_[worker.index].progressed = now;
    outcome = steps_.Update(iteration, now);
    for (const ScheduledSample& s : iteration.joined) {
      auto it = active_.find(s.id.request_id);
      if (it == active_.end()) continue;
      it->second.metrics.text_encode_ms += start_timings.text_encode_ms / joiners.size();
    }
    for (const auto& [id, request] : requests) {
      auto it = active_.find(id);
      if (it != active_.end()) it->second.metrics.denoise_ms += step_timings.denoise_ms;
    }
    for (const ScheduledSample& s : iteration.stepping) {
      StepEvent event{s.step + 1, s.steps, s.id.image, 1};
      PostLocked(
          s.id.request_id, [event](GenerationEventSink& sink) { sink.OnStep(event); }, &step_flush);
    }
    RecordDenoiseRateLocked(key, static_cast<int>(set.size()), step_timings);
  }
  Flush(step_flush);
  for (const SampleId& id : outcome.left) worker.samples.erase(id);
  if (!outcome.left.empty()) stepper.Release(outcome.left);

  // 5. Previews of the samples that go on.
  for (const ScheduledSample& s : iteration.stepping) {
    const int step = s.step + 1;
    if (step >= s.steps) continue;
    auto request = requests.find(s.id.request_id);
    if (request == requests.end() || !request->second->request.previews) continue;
    {
      absl::MutexLock lock(&mu_);
      if (!IsActiveLocked(s.id.request_id)) continue;
    }
    absl::StatusOr<RgbImage> preview = GuardedCall<RgbImage>([&] { return stepper.Preview(s.id); });
    if (!preview.ok()) {
      FlushList failed;
      {
        absl::MutexLock lock(&mu_);
        FinishLocked(s.id.request_id, Annotate(preview.status(), context), &failed);
      }
      Flush(failed);
      continue;
    }
    const Request& r = *request->second;
    const int index = s.id.image, width = preview->width, height = preview->height;
    const ImageFormat format = r.request.format;
    SubmitEncode(EncodeJob{request->second, worker.samples.at(s.id), 1, 0, *std::move(preview),
                           false, absl::StrCat("the preview of image ", index), context,
                           [=](std::string bytes) -> EventStream::Event {
                             PreviewEvent event{index, step,   std::move(bytes),
                                                width, height, format};
                             return [event = std::move(event)](GenerationEventSink& sink) mutable {
                               sink.OnPreview(std::move(event));
                             };
                           }});
  }

  // 6. Finished samples are decoded at once, in a batch of their own.
  StageTimings decode_timings;
  if (!outcome.finished.empty()) {
    FlushList done_flush;
    std::vector<RgbImage> images;
    absl::StatusOr<StageTimings> decoded =
        GuardedCall<StageTimings>([&] { return stepper.Decode(outcome.finished, &images); });
    std::vector<std::shared_ptr<ChunkProgress>> progress;
    for (const SampleId& id : outcome.finished) {
      progress.push_back(worker.samples.at(id));
      worker.samples.erase(id);
    }
    if (decoded.ok() && images.size() != outcome.finished.size()) {
      decoded = absl::InternalError(absl::StrCat("the pipeline decoded ", images.size(), " of ",
                                                 outcome.finished.size(), " samples"));
    }
    if (decoded.ok()) {
      for (size_t f = 0; f < outcome.finished.size(); ++f) {
        const SampleId& id = outcome.finished[f];
        auto request = requests.find(id.request_id);
        if (request == requests.end()) continue;
        const Request& r = *request->second;
        const int index = id.image, width = images[f].width, height = images[f].height;
        const ImageFormat format = r.request.format;
        const uint64_t seed = r.seed + static_cast<uint64_t>(index);
        SubmitEncode(EncodeJob{
            request->second, progress[f], 1, 0, std::move(images[f]), true,
            absl::StrCat("image ", index), context, [=](std::string bytes) -> EventStream::Event {
              GeneratedImage event{index, seed, std::move(bytes), width, height, format};
              return [event = std::move(event)](GenerationEventSink& sink) mutable {
                sink.OnImage(std::move(event));
              };
            }});
      }
    }
    {
      absl::MutexLock lock(&mu_);
      for (size_t f = 0; f < outcome.finished.size(); ++f) {
        const uint64_t id = outcome.finished[f].request_id;
        auto it = active_.find(id);
        if (it == active_.end()) continue;
        if (!decoded.ok()) {
          FinishLocked(id, Annotate(decoded.status(), context), &done_flush);
          continue;
        }
        decode_timings.decode_ms = decoded->decode_ms;
        it->second.metrics.decode_ms += decoded->decode_ms / outcome.finished.size();
        progress[f]->run_done = true;
        SettleChunkLocked(id, *progress[f], 1, context, &done_flush);
      }
    }
    Flush(done_flush);
  }
  ReportMemory(worker, *worker.pipelines.at(iteration.model));
  // The observer hears of the iteration as of a batch of one step.
  if (observer_ != nullptr) {
    StageTimings reported = step_timings;
    reported.text_encode_ms = start_timings.text_encode_ms;
    reported.prompt_cache_hits = start_timings.prompt_cache_hits;
    reported.prompt_cache_misses = start_timings.prompt_cache_misses;
    reported.decode_ms = decode_timings.decode_ms;
    absl::MutexLock lock(&mu_);
    observer_->OnBatchDone(MakeBatchReport(worker.device, worker.index, key, set_size, reported,
                                           Millis(clock_->Now() - started_at)),
                           /*warmup=*/false);
  }
  finish_running();
}

void EngineCore::SettleChunkLocked(uint64_t id, const ChunkProgress& progress, int images,
                                   const std::string& context, FlushList* flush) {
  if (!progress.run_done || progress.encodes_pending > 0) return;
  auto it = active_.find(id);
  if (it == active_.end()) return;
  if (progress.delivered != images) {
    FinishLocked(
        id,
        absl::InternalError(absl::StrCat(context, ": the pipeline returned ", progress.delivered,
                                         " of ", images, " images without an error")),
        flush);
    return;
  }
  if (--it->second.chunks_left == 0) FinishLocked(id, absl::OkStatus(), flush);
}

void EngineCore::RecordDenoiseRateLocked(const BatchKey& key, int images,
                                         const StageTimings& timings) {
  const double work = MegapixelSteps(key, images);
  if (work <= 0 || timings.denoise_ms <= 0) return;
  double& fastest = model_states_[model_index_.at(key.model)].fastest_ms_per_megapixel_step;
  const double rate = timings.denoise_ms / work;
  if (fastest == 0 || rate < fastest) fastest = rate;
}

void EngineCore::ReportEncoderBacklogLocked() {
  if (observer_ != nullptr) observer_->OnEncoderBacklog(encoder_backlog_);
}

void EngineCore::SubmitEncode(EncodeJob job) {
  {
    absl::MutexLock lock(&mu_);
    if (!IsActiveLocked(job.request->id)) return;  // ended: nobody waits for the image
    job.slot = job.request->events->Reserve();
    ++job.progress->encodes_pending;
    ++encoder_backlog_;
    ReportEncoderBacklogLocked();
  }
  // std::function needs a copyable callable: the job travels in a shared_ptr.
  auto shared = std::make_shared<EncodeJob>(std::move(job));
  encoders_->Submit([this, shared] { Encode(*shared); });
}

void EngineCore::Encode(EncodeJob& job) {
  const Request& r = *job.request;
  const absl::Time start = clock_->Now();
  absl::StatusOr<std::string> encoded =
      options_.image_encoder
          ? options_.image_encoder(job.image, r.request.format, r.resolved.quality)
          : EncodeImage(job.image, r.request.format, r.resolved.quality);
  const double encode_ms = Millis(clock_->Now() - start);
  job.image = RgbImage();  // the pixels are not needed any more
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    --encoder_backlog_;
    ReportEncoderBacklogLocked();
    --job.progress->encodes_pending;
    auto it = active_.find(r.id);
    if (it != active_.end()) {
      if (!encoded.ok()) {
        // The request was valid; a picture the encoder refuses is the server's fault.
        FinishLocked(r.id,
                     absl::InternalError(absl::StrCat(job.context, ": encoding ", job.what, ": ",
                                                      encoded.status().message())),
                     &flush);
      } else {
        it->second.metrics.image_encode_ms += encode_ms;
        r.events->Fill(job.slot, job.make_event(*std::move(encoded)));
        flush.push_back(r.events);
        if (job.final_image) {
          ++job.progress->delivered;
          ++it->second.metrics.num_images;
          if (observer_ != nullptr) observer_->OnImageDelivered(r.request.model, encode_ms);
        }
        SettleChunkLocked(r.id, *job.progress, job.chunk_images, job.context, &flush);
      }
    }
  }
  Flush(flush);
}

void EngineCore::ReportMemory(const Worker& worker, const Pipeline& pipeline) {
  if (observer_ == nullptr) return;
  // A failed measurement is no reason to fail a batch: the gauge keeps its last value.
  absl::StatusOr<DeviceMemory> memory =
      GuardedCall<DeviceMemory>([&] { return pipeline.MemoryUsage(); });
  if (memory.ok()) observer_->OnDeviceMemory(worker.device, worker.index, *memory);
  absl::StatusOr<std::optional<AdapterCacheStats>> adapters =
      GuardedCall<std::optional<AdapterCacheStats>>([&] { return pipeline.AdapterStats(); });
  if (adapters.ok() && adapters->has_value()) {
    observer_->OnAdapterCache(pipeline.info().name, worker.device, worker.index, **adapters);
  }
}

// ---------------------------------------------------------------------------------------------
// Readiness, listing, drain, stop

bool EngineCore::ready() {
  absl::MutexLock lock(&mu_);
  return drain_state_ == DrainState::kServing && load_status_.ok() &&
         ready_workers_ == static_cast<int>(workers_.size());
}

absl::Status EngineCore::WaitUntilReady() {
  absl::MutexLock lock(&mu_);
  while (load_status_.ok() && !stopping_ && ready_workers_ < static_cast<int>(workers_.size())) {
    state_cv_.Wait(&mu_);
  }
  if (!load_status_.ok()) return load_status_;
  if (ready_workers_ < static_cast<int>(workers_.size())) {
    return absl::UnavailableError("the engine stopped before it was ready");
  }
  return absl::OkStatus();
}

std::vector<ModelStatus> EngineCore::ListModels() {
  absl::MutexLock lock(&mu_);
  std::vector<ModelStatus> out;
  for (size_t m = 0; m < models_.size(); ++m) {
    const Model& model = models_[m];
    const ModelState& state = model_states_[m];
    ModelStatus status;
    if (state.info.has_value()) {
      status.info = *state.info;
    } else {
      status.info.name = model.options.spec.name;
    }
    for (int w : model.workers) status.devices.push_back(workers_[w]->device);
    status.ready = drain_state_ == DrainState::kServing &&
                   state.loaded_workers == static_cast<int>(model.workers.size());
    status.batching = model.options.batching;
    status.limits = model.options.limits;
    out.push_back(std::move(status));
  }
  return out;
}

absl::Status EngineCore::CheckProgress(absl::Duration limit) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  for (const auto& worker : workers_) {
    const WorkerSlot& slot = slots_[worker->index];
    if (!slot.running || now - slot.progressed <= limit) continue;
    return absl::DeadlineExceededError(
        absl::StrCat("worker ", worker->index, " (", worker->device, ") has made no progress for ",
                     absl::FormatDuration(absl::Trunc(now - slot.progressed, absl::Seconds(1))),
                     " in a batch of model \"", slot.running_model, "\" (limit ",
                     absl::FormatDuration(limit), ")"));
  }
  return absl::OkStatus();
}

void EngineCore::Drain(absl::Duration grace) {
  mu_.Lock();
  if (drain_state_ != DrainState::kServing) {
    while (drain_state_ != DrainState::kDrained) state_cv_.Wait(&mu_);
    mu_.Unlock();
    return;
  }
  drain_state_ = DrainState::kDraining;
  scheduler_cv_.Signal();  // queued batches stop waiting for their delay
  const absl::Time give_up = clock_->Now() + grace;
  while (!active_.empty() && clock_->Now() < give_up) {
    clock_->WaitUntil(&state_cv_, &mu_, give_up);
  }
  FlushList flush;
  std::vector<uint64_t> left;
  for (const auto& [id, active] : active_) left.push_back(id);
  std::sort(left.begin(), left.end());
  for (uint64_t id : left) {
    FinishLocked(id,
                 absl::UnavailableError(absl::StrCat(
                     "the server is shutting down; the request did not finish within the ",
                     absl::FormatDuration(grace), " drain grace period")),
                 &flush);
  }
  mu_.Unlock();
  Flush(flush);
  mu_.Lock();
  while (open_streams_ > 0) state_cv_.Wait(&mu_);
  drain_state_ = DrainState::kDrained;
  state_cv_.SignalAll();
  mu_.Unlock();
}

void EngineCore::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    scheduler_cv_.SignalAll();
    state_cv_.SignalAll();
    for (auto& worker : workers_) worker->cv.SignalAll();
  }
  if (scheduler_.joinable()) scheduler_.join();
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  encoders_.reset();
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Public facade

void RequestHandle::Cancel() const {
  if (auto core = core_.lock()) core->Cancel(id_);
}

namespace {

absl::Status ValidateOptions(const EngineOptions& options, const PipelineFactory& factory) {
  if (!factory) return absl::InvalidArgumentError("factory: must be set");
  if (options.devices.empty()) return absl::InvalidArgumentError("devices: none configured");
  for (size_t d = 0; d < options.devices.size(); ++d) {
    if (options.devices[d].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("devices[", d, "]: empty device name"));
    }
  }
  if (options.models.empty()) return absl::InvalidArgumentError("models: none configured");
  if (options.encoder_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoder_threads: ", options.encoder_threads, " is negative"));
  }
  if (options.drain_grace_micros < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("drain_grace_micros: ", options.drain_grace_micros, " is negative"));
  }
  absl::flat_hash_set<std::string> names;
  absl::flat_hash_set<std::string> used_devices;
  for (size_t m = 0; m < options.models.size(); ++m) {
    const ModelOptions& model = options.models[m];
    const std::string where = absl::StrCat("models[", m, "] (\"", model.spec.name, "\")");
    if (model.spec.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("models[", m, "].spec.name: empty"));
    }
    if (!names.insert(model.spec.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".spec.name: duplicate model name"));
    }
    for (const std::string& device : model.devices) {
      if (std::find(options.devices.begin(), options.devices.end(), device) ==
          options.devices.end()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ".devices: \"", device,
                                                       "\" is not one of the engine's devices (",
                                                       absl::StrJoin(options.devices, ", "), ")"));
      }
    }
    if (model.devices.empty()) {
      used_devices.insert(options.devices.begin(), options.devices.end());
    } else {
      used_devices.insert(model.devices.begin(), model.devices.end());
    }
    const BatchingOptions& b = model.batching;
    if (b.max_batch_size < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".batching.max_batch_size: ", b.max_batch_size, " is below 1"));
    }
    if (b.max_queue_delay_micros < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".batching.max_queue_delay_micros: ", b.max_queue_delay_micros, " is negative"));
    }
    if (b.max_queue_size < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".batching.max_queue_size: ", b.max_queue_size, " is below 1"));
    }
    const RequestLimits& l = model.limits;
    if (l.max_images_per_request < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".limits.max_images_per_request: ", l.max_images_per_request, " is below 1"));
    }
    if (l.max_prompt_bytes < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".limits.max_prompt_bytes: ", l.max_prompt_bytes, " is below 1"));
    }
    if (!(l.min_guidance_scale <= l.max_guidance_scale)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".limits: min_guidance_scale ", l.min_guidance_scale,
                       " exceeds max_guidance_scale ", l.max_guidance_scale));
    }
    if (model.warmup_steps < 0 || model.warmup_width < 0 || model.warmup_height < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": warmup_steps / warmup_width / warmup_height must be >= 0"));
    }
  }
  for (const std::string& device : options.devices) {
    if (!used_devices.contains(device)) {
      return absl::InvalidArgumentError(
          absl::StrCat("devices: \"", device,
                       "\" holds no model (list it in a model's devices "
                       "or drop it)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(EngineOptions options,
                                                       PipelineFactory factory) {
  if (absl::Status status = ValidateOptions(options, factory); !status.ok()) return status;
  auto core = std::make_shared<internal::EngineCore>(std::move(options), std::move(factory));
  core->Start();
  return std::unique_ptr<Engine>(new Engine(std::move(core)));
}

Engine::Engine(std::shared_ptr<internal::EngineCore> core) : core_(std::move(core)) {}

Engine::~Engine() {
  core_->Drain(core_->default_drain_grace());
  core_->Stop();
}

absl::StatusOr<RequestHandle> Engine::Submit(GenerationRequest request,
                                             std::shared_ptr<GenerationEventSink> sink) {
  return core_->Submit(std::move(request), std::move(sink));
}

void Engine::Drain(absl::Duration grace) { core_->Drain(grace); }
void Engine::Drain() { core_->Drain(core_->default_drain_grace()); }
bool Engine::ready() const { return core_->ready(); }
absl::Status Engine::WaitUntilReady() const { return core_->WaitUntilReady(); }
std::vector<ModelStatus> Engine::ListModels() const { return core_->ListModels(); }
std::vector<std::string> Engine::Adapters(const std::string& model) const {
  return core_->Adapters(model);
}
absl::Status Engine::CheckProgress(absl::Duration limit) const {
  return core_->CheckProgress(limit);
}
int Engine::encoder_threads() const { return core_->encoder_threads(); }

}  // namespace tlcm::engine
