// Ordered, non-overlapping delivery of one request's events to its GenerationEventSink.
// Engine-internal. Any thread may post; delivery happens outside every engine lock, on whichever
// thread flushes first, so that a sink callback may itself cause more events (e.g. cancel its
// request) without deadlock: those are delivered after the callback returns.
//
// An event that is not ready yet (an image still being encoded on the encoder pool) keeps its
// place through a reserved slot: Reserve() where the event belongs, Fill() when it is ready.
// Events behind an unfilled slot wait for it, so a request's events arrive in the order their
// places were taken, whichever encoder finishes first.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/generation_events.h"

namespace tlcm::engine {

class EventStream {
 public:
  using Event = std::function<void(GenerationEventSink&)>;
  using Slot = uint64_t;  // from Reserve(); never 0

  // `on_closed` runs once, right after the sink's OnDone has returned, on the delivering thread,
  // with no lock of this stream held.
  EventStream(std::shared_ptr<GenerationEventSink> sink, std::function<void()> on_closed);

  // Queues `event` behind those already queued (and behind unfilled slots). Cheap; never calls
  // the sink. Thread-safe. Events posted after PostDone are discarded.
  void Post(Event event);
  // Takes the next place in the queue for an event that comes later through Fill. After
  // PostDone it returns a slot that Fill ignores.
  Slot Reserve();
  // Puts `event` into `slot`'s place. A no-op when the slot was dropped by PostDone.
  void Fill(Slot slot, Event event);
  // Queues the terminal OnDone(status, metrics); everything posted later is discarded, and
  // slots still unfilled are dropped (their events will never be delivered).
  void PostDone(absl::Status status, RequestMetrics metrics);

  // Delivers the queued events on this thread, up to the first unfilled slot, unless another
  // thread is delivering (that thread then delivers them too before it stops). Call with no
  // engine lock held.
  void Flush();

 private:
  struct Entry {
    Slot slot = 0;               // 0 for posted events
    std::optional<Event> event;  // empty while a reserved slot waits for Fill
  };

  absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  Slot next_slot_ ABSL_GUARDED_BY(mu_) = 1;
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  bool done_posted_ ABSL_GUARDED_BY(mu_) = false;
  // Used only by the thread holding the delivery right (delivering_ set by it); released after
  // OnDone.
  std::shared_ptr<GenerationEventSink> sink_;
  std::function<void()> on_closed_;
};

}  // namespace tlcm::engine
