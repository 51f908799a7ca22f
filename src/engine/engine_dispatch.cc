// The scheduler thread: deadlines of queued and running requests, and handing ready batches
// and step-level work to idle workers. The only place that waits on the clock besides Drain.
#include <algorithm>

#include "engine/engine_core.h"

namespace tlcm::engine::internal {

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
  for (auto& worker : workers_) {
    WorkerSlot& slot = slots_[worker->index];
    if (slot.state != WorkerState::kIdle) continue;
    if (!steps_.HasWork(worker->index, now)) continue;
    slot.stepping = true;
    slot.state = WorkerState::kBusy;
    worker->cv.Signal();
  }
}

absl::Time EngineCore::NextWakeLocked() {
  absl::Time wake = deadlines_.empty() ? absl::InfiniteFuture() : deadlines_.begin()->first;
  for (auto& worker : workers_) {
    if (slots_[worker->index].state != WorkerState::kIdle) continue;
    wake = std::min(wake, steps_.NextReadyTime(worker->index));
  }
  return wake;
}

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

}  // namespace tlcm::engine::internal
