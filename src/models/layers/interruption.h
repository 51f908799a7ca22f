// Cooperative interruption of a forward pass. A pipeline installs a check for the length of one
// denoiser call (ScopedInterruption); the models call ThrowIfInterrupted() between their blocks,
// which throws Interrupted once the check returns true. So a batch whose requests were all
// cancelled or ran out of time stops within one block instead of at the end of a step (a step
// of a large image can take seconds on a GPU and minutes on a CPU). Thread-local: each worker
// thread has its own check; without one, ThrowIfInterrupted does nothing.
#pragma once

#include <exception>
#include <functional>

namespace tlcm {

// Thrown by ThrowIfInterrupted; the pipeline that installed the check catches it.
class Interrupted : public std::exception {
 public:
  const char* what() const noexcept override { return "interrupted: no image is wanted any more"; }
};

// Installs `check` on this thread until destroyed (the previous check, if any, comes back).
class ScopedInterruption {
 public:
  explicit ScopedInterruption(std::function<bool()> check);
  ~ScopedInterruption();
  ScopedInterruption(const ScopedInterruption&) = delete;
  ScopedInterruption& operator=(const ScopedInterruption&) = delete;

 private:
  std::function<bool()> previous_;
};

// Throws Interrupted when this thread's check returns true.
void ThrowIfInterrupted();

}  // namespace tlcm
