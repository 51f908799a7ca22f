// Event routing: what a request hears (started, steps, its end) and the bookkeeping that goes
// with it, under the engine's mutex; events are delivered (Flush) with no lock held.
#include <utility>

#include "engine/engine_core.h"

namespace tlcm::engine::internal {

void EngineCore::ReportQueueDepthLocked(const std::string& model) {
  if (observer_ != nullptr) {
    observer_->OnQueueDepth(model, steps_.queued_requests(model));
  }
}

void EngineCore::ReportInFlightLocked(const std::string& model) {
  if (observer_ != nullptr) {
    observer_->OnInFlight(model, model_states_[model_index_.at(model)].in_flight);
  }
}

void EngineCore::StartImagesLocked(Active& active, const Worker& worker, int batch_size,
                                   int first_image, int num_images, absl::Time now,
                                   FlushList* flush) {
  const Request& r = *active.request;
  if (!active.started) {
    active.started = true;
    active.metrics.queue_ms = Millis(now - r.admitted);
    active.metrics.device = worker.device;
  }
  ++active.metrics.num_batches;
  StartedEvent started{worker.device, worker.index, batch_size, first_image, num_images};
  PostLocked(
      r.id, [started](GenerationEventSink& sink) { sink.OnStarted(started); }, flush);
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
  // Queued images go at once; running samples leave at their set's next iteration.
  const int queued_images = steps_.Remove(id);
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

void EngineCore::SettleSampleLocked(uint64_t id, const SampleProgress& progress,
                                    const std::string& context, FlushList* flush) {
  if (!progress.decoded || progress.encodes_pending > 0) return;
  auto it = active_.find(id);
  if (it == active_.end()) return;
  if (!progress.delivered) {
    FinishLocked(id,
                 absl::InternalError(absl::StrCat(
                     context, ": the pipeline decoded a sample without an image and no error")),
                 flush);
    return;
  }
  if (--it->second.images_left == 0) FinishLocked(id, absl::OkStatus(), flush);
}

void EngineCore::Flush(const FlushList& flush) {
  for (const auto& events : flush) events->Flush();
}

void EngineCore::OnStreamClosed() {
  absl::MutexLock lock(&mu_);
  --open_streams_;
  state_cv_.SignalAll();
}

}  // namespace tlcm::engine::internal
