// Admission: Submit checks a request and queues it (or answers an error at once); Cancel.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/engine_core.h"
#include "util/client_text.h"
#include "util/status_macros.h"

namespace tlcm::engine::internal {

namespace {

// Random seeds stay below 2^53 so that clients holding numbers as doubles (JSON) keep them exact.
constexpr uint64_t kRandomSeedLimit = uint64_t{1} << 53;

}  // namespace

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
      const BatchKey& key = resolved->key;
      const int steps = key.steps - resolved->start_step;  // an image input skips the first ones
      const double megapixel_steps =
          MegapixelSteps(key.width, key.height, steps, request.num_images);
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
    absl::StatusOr<int> position = steps_.Enqueue(
        id, SampleShape{resolved->key, resolved->start_step}, request.num_images, now);
    if (!position.ok()) {
      AdmissionResult(known_model, position.status());
      return position.status();
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
    active.images_left = admitted->request.num_images;
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
        id, [position = *position](GenerationEventSink& s) { s.OnQueued(position); }, &flush);
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

}  // namespace tlcm::engine::internal
