// A hand-stepped Clock for engine tests: time moves only when the test calls Advance().
#pragma once

#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/clock.h"

namespace tlcm::engine::testing {

// Thread-safe. Threads waiting through WaitUntil wake when Advance() reaches their deadline (and
// on the condition variable's own signals). The waiters' mutexes must outlive the Advance calls
// that may touch them (in tests: advance only while the engine exists).
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}

  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  // Moves time forward by `step` and wakes every waiter (they re-check their deadlines).
  void Advance(absl::Duration step) {
    std::vector<std::pair<absl::CondVar*, absl::Mutex*>> waiters;
    {
      absl::MutexLock lock(&mu_);
      now_ += step;
      waiters = waiters_;
    }
    // Taking the waiter's mutex orders this signal after its Wait has begun: a waiter that
    // registered before our time update is inside Wait by the time we hold its mutex.
    for (auto& [cv, mu] : waiters) {
      absl::MutexLock lock(mu);
      cv->SignalAll();
    }
  }

  void WaitUntil(absl::CondVar* cv, absl::Mutex* mu, absl::Time deadline) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    {
      absl::MutexLock lock(&mu_);
      if (now_ >= deadline) return;
      waiters_.emplace_back(cv, mu);
    }
    cv->Wait(mu);
    absl::MutexLock lock(&mu_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->first == cv && it->second == mu) {
        waiters_.erase(it);
        break;
      }
    }
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<absl::CondVar*, absl::Mutex*>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tlcm::engine::testing
