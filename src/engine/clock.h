// The engine's notion of time, injectable so that tests step it by hand (see FakeClock in
// tests/engine/fake_clock.h). Every deadline, queue delay, drain grace and latency the engine
// measures comes from one Clock.
#pragma once

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tlcm::engine {

class Clock {
 public:
  virtual ~Clock() = default;

  // The current time. Thread-safe.
  virtual absl::Time Now() = 0;

  // Like `cv->Wait(mu)` (the caller holds `mu`; it is released while waiting and held again on
  // return), but also returns once Now() >= `deadline` on this clock. absl::InfiniteFuture()
  // waits for a signal only. May return early (spuriously): callers re-check their condition.
  virtual void WaitUntil(absl::CondVar* cv, absl::Mutex* mu, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;
};

// The wall clock (absl::Now()). A process-wide singleton; never destroyed.
Clock* RealClock();

}  // namespace tlcm::engine
