#include "engine/event_stream.h"

#include <algorithm>
#include <utility>

namespace tlcm::engine {

EventStream::EventStream(std::shared_ptr<GenerationEventSink> sink, std::function<void()> on_closed)
    : sink_(std::move(sink)), on_closed_(std::move(on_closed)) {}

void EventStream::Post(Event event) {
  absl::MutexLock lock(&mu_);
  if (done_posted_) return;
  queue_.push_back(Entry{0, std::move(event)});
}

EventStream::Slot EventStream::Reserve() {
  absl::MutexLock lock(&mu_);
  const Slot slot = next_slot_++;
  if (!done_posted_) queue_.push_back(Entry{slot, std::nullopt});
  return slot;
}

void EventStream::Fill(Slot slot, Event event) {
  absl::MutexLock lock(&mu_);
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [slot](const Entry& entry) { return entry.slot == slot; });
  if (it != queue_.end()) it->event = std::move(event);
}

void EventStream::PostDone(absl::Status status, RequestMetrics metrics) {
  absl::MutexLock lock(&mu_);
  if (done_posted_) return;
  done_posted_ = true;
  std::erase_if(queue_, [](const Entry& entry) { return !entry.event.has_value(); });
  queue_.push_back(Entry{0, [status = std::move(status), metrics = std::move(metrics)](
                                GenerationEventSink& sink) { sink.OnDone(status, metrics); }});
}

void EventStream::Flush() {
  mu_.Lock();
  if (delivering_) {
    mu_.Unlock();
    return;
  }
  delivering_ = true;
  while (!queue_.empty() && queue_.front().event.has_value()) {
    Event event = *std::move(queue_.front().event);
    queue_.pop_front();
    const bool last = done_posted_ && queue_.empty();
    mu_.Unlock();
    event(*sink_);
    if (last) {
      // OnDone was delivered: nothing follows. Let the sink go before telling the engine.
      sink_.reset();
      on_closed_();
      mu_.Lock();
      break;
    }
    mu_.Lock();
  }
  delivering_ = false;
  mu_.Unlock();
}

}  // namespace tlcm::engine
