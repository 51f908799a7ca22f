// Ordered, non-overlapping delivery of one request's events to its GenerationEventSink.
// Engine-internal. Any thread may post; delivery happens outside every engine lock, on whichever
// thread flushes first, so that a sink callback may itself cause more events (e.g. cancel its
// request) without deadlock: those are delivered after the callback returns.
#pragma once

#include <deque>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/generation_events.h"

namespace tlcm::engine {

class EventStream {
 public:
  using Event = std::function<void(GenerationEventSink&)>;

  // `on_closed` runs once, right after the sink's OnDone has returned, on the delivering thread,
  // with no lock of this stream held.
  EventStream(std::shared_ptr<GenerationEventSink> sink, std::function<void()> on_closed);

  // Queues `event` behind those already queued. Cheap; never calls the sink. Thread-safe.
  // Events posted after PostDone are discarded.
  void Post(Event event);
  // Queues the terminal OnDone(status, metrics); everything posted later is discarded.
  void PostDone(absl::Status status, RequestMetrics metrics);

  // Delivers the queued events on this thread, unless another thread is delivering (that thread
  // then delivers them too before it stops). Call with no engine lock held.
  void Flush();

 private:
  absl::Mutex mu_;
  std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  bool done_posted_ ABSL_GUARDED_BY(mu_) = false;
  // Used only by the thread holding the delivery right (delivering_ set by it); released after
  // OnDone.
  std::shared_ptr<GenerationEventSink> sink_;
  std::function<void()> on_closed_;
};

}  // namespace tlcm::engine
