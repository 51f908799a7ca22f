// A fixed set of CPU threads that encode images (PNG / JPEG / WebP) off the device workers, so
// that a worker starts its next batch as soon as its images are decoded. Engine-internal,
// torch-free: a job is any callable; the engine's jobs encode one image and post it in order
// through the request's EventStream.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tlcm::engine {

class EncoderPool {
 public:
  using Job = std::function<void()>;

  // Starts `threads` (>= 1) threads. Submit blocks while `max_queued` (>= 1) jobs wait: that
  // bounds the decoded images held in memory when encoding falls behind the devices.
  EncoderPool(int threads, int max_queued);
  // Runs every job already submitted, then joins the threads.
  ~EncoderPool();

  EncoderPool(const EncoderPool&) = delete;
  EncoderPool& operator=(const EncoderPool&) = delete;

  // Queues `job` for the first free thread, in submission order; waits while the queue is full.
  // Jobs must not throw and must not call Submit (a full queue would wait on itself).
  // Thread-safe.
  void Submit(Job job);

  int threads() const { return static_cast<int>(threads_.size()); }
  // Jobs submitted and not yet finished (queued or running).
  int pending() const;

  // The pool size for `requested` threads: itself when positive, otherwise half the machine's
  // hardware threads, at least 1 and at most 16 (encoding shares the CPU with the workers'
  // own threads and the RPC threads).
  static int ThreadsFor(int requested);

 private:
  void ThreadMain();
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWorkOrStops() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_queued_;
  mutable absl::Mutex mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tlcm::engine
