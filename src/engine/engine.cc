// Construction, readiness, listing, drain and stop of the engine, and the public facade
// (Engine, RequestHandle). The rest of EngineCore is in the files engine_core.h lists.
#include "engine/engine.h"

#include <algorithm>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/engine_core.h"

namespace tlcm::engine {
namespace internal {
namespace {

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
    steps_.AddModel(model_options.spec.name, model_options.batching);
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
  steps_.StopWaitingToFill();
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
