#include "server/http/event_queue.h"

#include <utility>

namespace tlcm::server {

std::optional<GenerationEvent> EventQueue::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(this, &EventQueue::HasEvent), timeout)) {
    return std::nullopt;
  }
  GenerationEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

void EventQueue::Push(GenerationEvent event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

void EventQueue::OnQueued(int position) { Push(QueuedEvent{position}); }
void EventQueue::OnStarted(const engine::StartedEvent& event) { Push(event); }
void EventQueue::OnStep(const engine::StepEvent& event) { Push(event); }
void EventQueue::OnPreview(engine::PreviewEvent preview) { Push(std::move(preview)); }
void EventQueue::OnImage(engine::GeneratedImage image) { Push(std::move(image)); }
void EventQueue::OnDone(const absl::Status& status, const engine::RequestMetrics& metrics) {
  Push(DoneEvent{status, metrics});
}

}  // namespace tlcm::server
