#include "engine/encoder_pool.h"

#include <algorithm>
#include <utility>

namespace tlcm::engine {

EncoderPool::EncoderPool(int threads, int max_queued) : max_queued_(std::max(1, max_queued)) {
  threads = std::max(1, threads);
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ThreadMain(); });
}

EncoderPool::~EncoderPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

void EncoderPool::Submit(Job job) {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &EncoderPool::HasRoom));
  queue_.push_back(std::move(job));
}

int EncoderPool::pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size()) + running_;
}

int EncoderPool::ThreadsFor(int requested) {
  if (requested > 0) return requested;
  const int hardware = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(hardware / 2, 1, 16);
}

bool EncoderPool::HasRoom() const { return static_cast<int>(queue_.size()) < max_queued_; }

bool EncoderPool::HasWorkOrStops() const { return stopping_ || !queue_.empty(); }

void EncoderPool::ThreadMain() {
  while (true) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &EncoderPool::HasWorkOrStops));
      if (queue_.empty()) return;  // stopping, and every job has run
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    job();
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

}  // namespace tlcm::engine
