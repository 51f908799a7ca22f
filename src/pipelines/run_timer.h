// Wall-clock stage timing that waits for queued device work before reading the clock.
#pragma once

#include <chrono>

#include <torch/torch.h>

namespace tlcm {

class RunTimer {
 public:
  explicit RunTimer(const torch::Device& device) : device_(device) { Restart(); }

  void Restart() {
    Sync();
    start_ = std::chrono::steady_clock::now();
  }

  // Milliseconds since the last Restart(), then restarts.
  double Lap() {
    Sync();
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - start_).count();
    start_ = now;
    return ms;
  }

 private:
  void Sync() const {
    if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
  }

  torch::Device device_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tlcm
