#include "engine/batch_queue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tlcm::engine {

void BatchQueue::AddModel(const std::string& model, int max_batch_size,
                          absl::Duration max_queue_delay, int max_queue_size) {
  ModelLimits& limits = models_[model];
  limits.max_batch_size = max_batch_size;
  limits.max_queue_delay = max_queue_delay;
  limits.max_queue_size = max_queue_size;
}

absl::StatusOr<BatchQueue::Admission> BatchQueue::Enqueue(const BatchKey& key, uint64_t request_id,
                                                          int num_images, absl::Time now) {
  ModelLimits& limits = models_.at(key.model);
  if (limits.queued_requests >= limits.max_queue_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("model \"", key.model, "\": the queue is full (", limits.max_queue_size,
                     " requests waiting); retry later"));
  }
  Admission admission;
  admission.position = limits.queued_requests;
  std::deque<Batch>& queue = batches_[key];
  const bool keep_whole = num_images <= limits.max_batch_size;
  int first = 0;
  while (first < num_images) {
    if (queue.empty() || queue.back().closed) {
      Batch batch;
      batch.key = key;
      batch.opened = now;
      batch.sequence = next_sequence_++;
      queue.push_back(std::move(batch));
    }
    Batch& open = queue.back();
    const int room = limits.max_batch_size - open.num_images;
    const int remaining = num_images - first;
    if (keep_whole && remaining > room) {
      open.closed = true;  // a fresh batch holds the whole request
      continue;
    }
    const int take = std::min(room, remaining);
    open.chunks.push_back(QueuedChunk{request_id, first, take});
    open.num_images += take;
    if (open.num_images >= limits.max_batch_size) open.closed = true;
    first += take;
    ++admission.num_chunks;
  }
  requests_[request_id] = RequestEntry{key, admission.num_chunks};
  ++limits.queued_requests;
  return admission;
}

void BatchQueue::ChunkLeft(uint64_t request_id) {
  auto it = requests_.find(request_id);
  if (--it->second.queued_chunks == 0) {
    --models_.at(it->second.key.model).queued_requests;
    requests_.erase(it);
  }
}

int BatchQueue::Remove(uint64_t request_id) {
  auto request = requests_.find(request_id);
  if (request == requests_.end()) return 0;
  const BatchKey key = request->second.key;
  auto queue_it = batches_.find(key);
  std::deque<Batch>& queue = queue_it->second;
  int removed = 0;
  for (auto batch = queue.begin(); batch != queue.end();) {
    auto& chunks = batch->chunks;
    for (auto chunk = chunks.begin(); chunk != chunks.end();) {
      if (chunk->request_id == request_id) {
        batch->num_images -= chunk->num_images;
        chunk = chunks.erase(chunk);
        ++removed;
      } else {
        ++chunk;
      }
    }
    batch = chunks.empty() ? queue.erase(batch) : batch + 1;
  }
  if (queue.empty()) batches_.erase(queue_it);
  --models_.at(key.model).queued_requests;
  requests_.erase(request);
  return removed;
}

absl::Time BatchQueue::ReadyTime(const Batch& batch, bool flush) const {
  if (flush || batch.closed) return absl::InfinitePast();
  return batch.opened + models_.at(batch.key.model).max_queue_delay;
}

bool BatchQueue::IsReady(const Batch& batch, absl::Time now, bool flush) const {
  return ReadyTime(batch, flush) <= now;
}

bool BatchQueue::TakeReadyBatch(absl::Time now, bool flush,
                                const std::function<bool(const std::string& model)>& eligible,
                                Batch* out) {
  // Only a key's first batch can be the oldest ready one of that key: every later batch is
  // younger, and if the first is not ready it is the key's only (open) batch.
  std::deque<Batch>* best = nullptr;
  for (auto& [key, queue] : batches_) {
    const Batch& front = queue.front();
    if (!IsReady(front, now, flush) || !eligible(key.model)) continue;
    if (best == nullptr || front.sequence < best->front().sequence) best = &queue;
  }
  if (best == nullptr) return false;
  *out = std::move(best->front());
  best->pop_front();
  if (best->empty()) batches_.erase(out->key);
  for (const QueuedChunk& chunk : out->chunks) ChunkLeft(chunk.request_id);
  return true;
}

absl::Time BatchQueue::NextReadyTime(
    bool flush, const std::function<bool(const std::string& model)>& eligible) const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [key, queue] : batches_) {
    if (eligible(key.model)) next = std::min(next, ReadyTime(queue.front(), flush));
  }
  return next;
}

int BatchQueue::queued_requests(const std::string& model) const {
  auto it = models_.find(model);
  return it == models_.end() ? 0 : it->second.queued_requests;
}

}  // namespace tlcm::engine
