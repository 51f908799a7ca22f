// A GenerationEventSink that queues one request's events for a thread that waits for them (the
// HTTP connection's thread, which writes them out as server-sent events or as one JSON answer).
#pragma once

#include <deque>
#include <optional>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/generation_events.h"

namespace tlcm::server {

struct QueuedEvent {
  int position = 0;
};
struct DoneEvent {
  absl::Status status;
  engine::RequestMetrics metrics;
};
using GenerationEvent = std::variant<QueuedEvent, engine::StartedEvent, engine::StepEvent,
                                     engine::PreviewEvent, engine::GeneratedImage, DoneEvent>;

// Thread-safe. The engine's calls never block; Next is for one consumer.
class EventQueue final : public engine::GenerationEventSink {
 public:
  // The oldest event not yet taken, waiting at most `timeout` for one; nullopt when none came.
  // DoneEvent is the last event there will be.
  std::optional<GenerationEvent> Next(absl::Duration timeout);

  void OnQueued(int position) override;
  void OnStarted(const engine::StartedEvent& event) override;
  void OnStep(const engine::StepEvent& event) override;
  void OnPreview(engine::PreviewEvent preview) override;
  void OnImage(engine::GeneratedImage image) override;
  void OnDone(const absl::Status& status, const engine::RequestMetrics& metrics) override;

 private:
  void Push(GenerationEvent event);
  bool HasEvent() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty(); }

  absl::Mutex mu_;
  std::deque<GenerationEvent> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tlcm::server
