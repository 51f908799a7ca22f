// The engine's batching queue: which requests run together and which batch runs next.
// A plain data structure (no threads, no clock of its own, not thread-safe): the engine calls it
// under its mutex, and tests drive it directly with hand-picked times. Like TF-Serving's
// batch scheduler it knows only "a task with a size": request ids and image counts.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/pipeline.h"

namespace tlcm::engine {

// Images [first_image, first_image + num_images) of one request.
struct QueuedChunk {
  uint64_t request_id = 0;
  int first_image = 0;
  int num_images = 0;

  friend bool operator==(const QueuedChunk& a, const QueuedChunk& b) {
    return a.request_id == b.request_id && a.first_image == b.first_image &&
           a.num_images == b.num_images;
  }
};

// Chunks of requests with one BatchKey, at most max_batch_size images in all.
struct Batch {
  BatchKey key;
  std::vector<QueuedChunk> chunks;  // in arrival order
  int num_images = 0;
  absl::Time opened;      // when its first chunk arrived
  uint64_t sequence = 0;  // order of opening, across keys
  bool closed = false;    // takes no more chunks: full, or the next request did not fit
};

class BatchQueue {
 public:
  // Per-model limits (engine.h's BatchingOptions). A model is added before its requests come.
  void AddModel(const std::string& model, int max_batch_size, absl::Duration max_queue_delay,
                int max_queue_size);

  struct Admission {
    int position = 0;    // requests of the same model queued ahead of this one
    int num_chunks = 0;  // how many batches the request's images went into
  };
  // Queues `num_images` images of request `request_id` under `key`. A request whose images fit
  // in one batch stays whole: it joins the key's open batch if there is room, otherwise that
  // batch closes and a new one opens. A larger request is split: it fills the open batch, then
  // new batches. Errors: RESOURCE_EXHAUSTED when the model's queue already holds
  // max_queue_size requests. Preconditions: the model was added, num_images >= 1, the id is new.
  absl::StatusOr<Admission> Enqueue(const BatchKey& key, uint64_t request_id, int num_images,
                                    absl::Time now);

  // Removes every queued chunk of `request_id` (chunks already taken are not affected).
  // Returns how many were removed.
  int Remove(uint64_t request_id);

  // Removes and returns the batch that opened first among the ready ones of the models for
  // which `eligible(model)` is true; false when none is ready. A batch is ready when it is
  // closed, when it has waited its model's max_queue_delay, or always when `flush` is set.
  bool TakeReadyBatch(absl::Time now, bool flush,
                      const std::function<bool(const std::string& model)>& eligible, Batch* out);

  // The earliest time at which a batch of an eligible model is ready (absl::InfinitePast() when
  // one is ready whatever the time; absl::InfiniteFuture() when none is queued).
  absl::Time NextReadyTime(bool flush,
                           const std::function<bool(const std::string& model)>& eligible) const;

  // Requests of `model` with at least one chunk queued.
  int queued_requests(const std::string& model) const;
  bool empty() const { return batches_.empty(); }

 private:
  struct ModelLimits {
    int max_batch_size = 1;
    absl::Duration max_queue_delay;
    int max_queue_size = 1;
    int queued_requests = 0;
  };
  struct RequestEntry {
    BatchKey key;
    int queued_chunks = 0;
  };

  bool IsReady(const Batch& batch, absl::Time now, bool flush) const;
  absl::Time ReadyTime(const Batch& batch, bool flush) const;
  void ChunkLeft(uint64_t request_id);

  absl::flat_hash_map<std::string, ModelLimits> models_;
  // Per key, its batches in opening order; only the last one may be open. No empty deques.
  absl::flat_hash_map<BatchKey, std::deque<Batch>> batches_;
  absl::flat_hash_map<uint64_t, RequestEntry> requests_;  // requests with queued chunks
  uint64_t next_sequence_ = 0;
};

}  // namespace tlcm::engine
