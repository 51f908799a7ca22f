#include "engine/step_scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tlcm::engine {

void StepScheduler::AddModel(const std::string& model, const BatchingOptions& batching) {
  models_[model].batching = batching;
}

void StepScheduler::AddWorker(std::vector<std::string> models) {
  workers_.push_back(Worker{std::move(models), {}});
}

bool StepScheduler::Holds(const Worker& worker, const std::string& model) {
  return std::find(worker.models.begin(), worker.models.end(), model) != worker.models.end();
}

bool StepScheduler::RequestLevel(const std::string& model) const {
  return models_.at(model).batching.mode == BatchingMode::kRequest;
}

bool StepScheduler::SameSet(const SampleShape& a, const SampleShape& b) const {
  if (a.key.model != b.key.model) return false;
  if (RequestLevel(a.key.model)) return a.key == b.key;
  return a.key.width == b.key.width && a.key.height == b.key.height;
}

absl::StatusOr<int> StepScheduler::Enqueue(uint64_t request_id, const SampleShape& shape,
                                           int num_images, absl::Time now) {
  Model& model = models_.at(shape.key.model);
  if (model.queued_requests >= model.batching.max_queue_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("model \"", shape.key.model, "\": the queue is full (",
                     model.batching.max_queue_size, " requests waiting); retry later"));
  }
  queue_.push_back(Queued{request_id, shape, 0, num_images, now});
  queued_ids_.insert(request_id);
  return model.queued_requests++;
}

int StepScheduler::Remove(uint64_t request_id) {
  int removed = 0;
  if (queued_ids_.erase(request_id) > 0) {
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [&](const Queued& q) { return q.request_id == request_id; });
    removed = it->num_images;
    --models_.at(it->shape.key.model).queued_requests;
    queue_.erase(it);
  }
  for (Worker& worker : workers_) {
    for (RunningSet& set : worker.sets) {
      for (RunningSample& sample : set.samples) {
        if (sample.sample.id.request_id == request_id) sample.leaving = true;
      }
    }
  }
  return removed;
}

StepScheduler::Formation StepScheduler::FormRequestSet(const Queued& q) const {
  const int max_batch_size = models_.at(q.shape.key.model).batching.max_batch_size;
  Formation formation;
  formation.taken.assign(queue_.size(), 0);
  int room = max_batch_size;
  for (size_t i = 0; i < queue_.size() && room > 0; ++i) {
    const Queued& entry = queue_[i];
    if (!(entry.shape.key == q.shape.key)) continue;
    if (entry.num_images > max_batch_size) {  // split: it fills the set
      formation.taken[i] = std::min(room, entry.num_images);
    } else if (entry.num_images <= room) {  // stays whole
      formation.taken[i] = entry.num_images;
    } else {  // the next one does not fit: the set need not wait for more
      formation.closed = true;
      break;
    }
    room -= formation.taken[i];
  }
  if (room == 0) formation.closed = true;
  return formation;
}

absl::Time StepScheduler::ReadyTime(const Queued& q) const {
  if (flush_) return absl::InfinitePast();
  // The set's first image is the oldest of the key, which is `q` only when the caller passes
  // the key's first entry; find it.
  const Queued* first = &q;
  for (const Queued& entry : queue_) {
    if (entry.shape.key == q.shape.key) {
      first = &entry;
      break;
    }
  }
  if (FormRequestSet(*first).closed) return absl::InfinitePast();
  return first->arrived +
         absl::Microseconds(models_.at(q.shape.key.model).batching.max_queue_delay_micros);
}

bool StepScheduler::MayOpen(const Worker& worker, const Queued& q, absl::Time now) const {
  if (RequestLevel(q.shape.key.model)) return ReadyTime(q) <= now;
  for (const RunningSet& set : worker.sets) {
    if (SameSet(set.shape, q.shape)) return false;  // waits for room in this device's set
  }
  const int max = models_.at(q.shape.key.model).batching.max_batch_size;
  for (const Worker& other : workers_) {
    // A worker running a request-level set has paused its other sets: their room is no room.
    if (std::any_of(other.sets.begin(), other.sets.end(),
                    [](const RunningSet& set) { return set.request_level; })) {
      continue;
    }
    for (const RunningSet& set : other.sets) {
      if (SameSet(set.shape, q.shape) && static_cast<int>(set.samples.size()) < max) return false;
    }
  }
  return true;
}

bool StepScheduler::JoinsBefore(const Queued& a, const Queued& b, int max_batch_size) {
  const bool a_due = a.overtaken >= max_batch_size;
  const bool b_due = b.overtaken >= max_batch_size;
  if (a_due != b_due) return a_due;
  if (a_due) return false;  // both due: arrival order
  return a.shape.key.steps - a.shape.start_step < b.shape.key.steps - b.shape.start_step;
}

std::vector<int> StepScheduler::ChooseJoiners(const RunningSet& set) const {
  const int max_batch_size = models_.at(set.shape.key.model).batching.max_batch_size;
  std::vector<int> taken(queue_.size(), 0);
  int room = max_batch_size - static_cast<int>(set.samples.size());
  if (room <= 0) return taken;
  std::vector<size_t> order;  // indices into queue_ of the images that may join, by priority
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (SameSet(queue_[i].shape, set.shape)) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return JoinsBefore(queue_[a], queue_[b], max_batch_size);
  });
  for (size_t i : order) {
    if (room == 0) break;
    taken[i] = std::min(room, queue_[i].num_images);
    room -= taken[i];
  }
  return taken;
}

void StepScheduler::Join(RunningSet& set, const std::vector<int>& taken, Iteration* out) {
  for (size_t i = 0; i < queue_.size(); ++i) {
    Queued& q = queue_[i];
    for (int k = 0; k < taken[i]; ++k) {
      const ScheduledSample sample{SampleId{q.request_id, q.first_image + k}, q.shape.key.steps,
                                   q.shape.start_step};
      set.samples.push_back(RunningSample{sample, false});
      out->joined.push_back(sample);
    }
    q.first_image += taken[i];
    q.num_images -= taken[i];
  }
  // Every image that joined counts against the older images of the set's shape left waiting.
  int joined_after = 0;  // images joined from entries behind position i
  for (size_t i = queue_.size(); i-- > 0;) {
    if (!SameSet(queue_[i].shape, set.shape)) continue;
    if (queue_[i].num_images > 0) queue_[i].overtaken += joined_after;
    joined_after += taken[i];
  }
  std::erase_if(queue_, [&](const Queued& q) {
    if (q.num_images > 0) return false;
    queued_ids_.erase(q.request_id);
    --models_.at(q.shape.key.model).queued_requests;
    return true;
  });
}

bool StepScheduler::Schedule(int worker_index, absl::Time now, Iteration* out) {
  Worker& worker = workers_[worker_index];
  // The candidate whose turn it is: a running request-level set keeps the worker; otherwise the
  // earliest turn wins and running sets win ties.
  RunningSet* chosen = nullptr;
  for (RunningSet& set : worker.sets) {
    if (set.request_level) {
      chosen = &set;
      break;
    }
    if (chosen == nullptr || set.turn < chosen->turn) chosen = &set;
  }
  const Queued* opener = nullptr;
  if (chosen == nullptr || !chosen->request_level) {
    for (const Queued& q : queue_) {  // arrival order: the first that may open is the oldest
      if (chosen != nullptr && q.arrived >= chosen->turn) break;
      if (Holds(worker, q.shape.key.model) && MayOpen(worker, q, now)) {
        opener = &q;
        break;
      }
    }
  }
  std::vector<int> taken;
  if (opener != nullptr) {
    RunningSet set;
    set.id = next_set_++;
    set.shape = opener->shape;
    set.request_level = RequestLevel(opener->shape.key.model);
    set.turn = now;
    if (set.request_level) taken = FormRequestSet(*opener).taken;
    worker.sets.push_back(std::move(set));
    chosen = &worker.sets.back();
  }
  if (chosen == nullptr) return false;

  *out = Iteration();
  out->worker = worker_index;
  out->set = chosen->id;
  out->model = chosen->shape.key.model;
  out->width = chosen->shape.key.width;
  out->height = chosen->shape.key.height;
  out->request_level = chosen->request_level;
  std::erase_if(chosen->samples, [&](const RunningSample& sample) {
    if (sample.leaving) out->left.push_back(sample.sample.id);
    return sample.leaving;
  });
  if (!chosen->request_level) taken = ChooseJoiners(*chosen);
  if (!taken.empty()) Join(*chosen, taken, out);
  for (const RunningSample& sample : chosen->samples) out->stepping.push_back(sample.sample);
  if (out->stepping.empty()) CloseSet(worker_index, chosen->id);
  return true;
}

StepScheduler::RunningSet* StepScheduler::FindSet(int worker, uint64_t id) {
  for (RunningSet& set : workers_[worker].sets) {
    if (set.id == id) return &set;
  }
  return nullptr;
}

void StepScheduler::CloseSet(int worker, uint64_t id) {
  std::erase_if(workers_[worker].sets, [id](const RunningSet& s) { return s.id == id; });
}

StepOutcome StepScheduler::Update(const Iteration& iteration, absl::Time now) {
  StepOutcome outcome;
  RunningSet* set = FindSet(iteration.worker, iteration.set);
  if (set == nullptr) {
    outcome.closed = true;
    return outcome;
  }
  std::erase_if(set->samples, [&](RunningSample& sample) {
    ++sample.sample.step;
    if (sample.leaving) {
      outcome.left.push_back(sample.sample.id);
      return true;
    }
    if (sample.sample.step >= sample.sample.steps) {
      outcome.finished.push_back(sample.sample.id);
      return true;
    }
    return false;
  });
  set->turn = now;
  if (set->samples.empty()) {
    CloseSet(iteration.worker, iteration.set);
    outcome.closed = true;
  }
  return outcome;
}

std::vector<uint64_t> StepScheduler::Fail(const Iteration& iteration) {
  std::vector<uint64_t> requests;
  RunningSet* set = FindSet(iteration.worker, iteration.set);
  if (set == nullptr) return requests;
  for (const RunningSample& sample : set->samples) {
    const uint64_t id = sample.sample.id.request_id;
    if (std::find(requests.begin(), requests.end(), id) == requests.end()) requests.push_back(id);
  }
  CloseSet(iteration.worker, iteration.set);
  return requests;
}

bool StepScheduler::HasWork(int worker_index, absl::Time now) const {
  const Worker& worker = workers_[worker_index];
  if (!worker.sets.empty()) return true;
  return std::any_of(queue_.begin(), queue_.end(), [&](const Queued& q) {
    return Holds(worker, q.shape.key.model) && MayOpen(worker, q, now);
  });
}

absl::Time StepScheduler::NextReadyTime(int worker_index) const {
  const Worker& worker = workers_[worker_index];
  if (!worker.sets.empty()) return absl::InfinitePast();
  absl::Time next = absl::InfiniteFuture();
  for (const Queued& q : queue_) {
    if (!Holds(worker, q.shape.key.model)) continue;
    if (RequestLevel(q.shape.key.model)) {
      next = std::min(next, ReadyTime(q));
    } else if (MayOpen(worker, q, absl::InfinitePast())) {
      return absl::InfinitePast();
    }
  }
  return next;
}

int StepScheduler::queued_requests(const std::string& model) const {
  auto it = models_.find(model);
  return it == models_.end() ? 0 : it->second.queued_requests;
}

int StepScheduler::running_samples(int worker) const {
  int samples = 0;
  for (const RunningSet& set : workers_[worker].sets) {
    samples += static_cast<int>(set.samples.size());
  }
  return samples;
}

}  // namespace tlcm::engine
