#include "engine/step_scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tlcm::engine {

void StepScheduler::AddModel(const std::string& model, ModelLimits limits) {
  models_[model].limits = limits;
}

void StepScheduler::AddWorker(std::vector<std::string> models) {
  workers_.push_back(Worker{std::move(models), {}});
}

bool StepScheduler::Holds(const Worker& worker, const std::string& model) {
  return std::find(worker.models.begin(), worker.models.end(), model) != worker.models.end();
}

bool StepScheduler::SameSet(const SampleShape& a, const SampleShape& b) {
  return a.model == b.model && a.width == b.width && a.height == b.height;
}

absl::StatusOr<int> StepScheduler::Enqueue(uint64_t request_id, const SampleShape& shape,
                                           int num_images, absl::Time now) {
  Limits& model = models_.at(shape.model);
  if (model.queued_requests >= model.limits.max_queue_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("model \"", shape.model, "\": the queue is full (",
                     model.limits.max_queue_size, " requests waiting); retry later"));
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
    --models_.at(it->shape.model).queued_requests;
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

bool StepScheduler::MayOpen(const Worker& worker, const SampleShape& shape) const {
  for (const RunningSet& set : worker.sets) {
    if (SameSet(set.shape, shape)) return false;  // waits for room in this device's set
  }
  const int max = models_.at(shape.model).limits.max_batch_size;
  for (const Worker& other : workers_) {
    for (const RunningSet& set : other.sets) {
      if (SameSet(set.shape, shape) && static_cast<int>(set.samples.size()) < max) return false;
    }
  }
  return true;
}

bool StepScheduler::JoinsBefore(const Queued& a, const Queued& b, int max_batch_size) {
  const bool a_due = a.overtaken >= max_batch_size;
  const bool b_due = b.overtaken >= max_batch_size;
  if (a_due != b_due) return a_due;
  if (a_due) return false;  // both due: arrival order
  return a.shape.steps - a.shape.start_step < b.shape.steps - b.shape.start_step;
}

void StepScheduler::Join(RunningSet& set, Iteration* out) {
  const int max_batch_size = models_.at(set.shape.model).limits.max_batch_size;
  int room = max_batch_size - static_cast<int>(set.samples.size());
  if (room <= 0) return;
  std::vector<size_t> order;  // indices into queue_ of the images that may join, by priority
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (SameSet(queue_[i].shape, set.shape)) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return JoinsBefore(queue_[a], queue_[b], max_batch_size);
  });
  std::vector<int> taken(queue_.size(), 0);
  for (size_t i : order) {
    if (room == 0) break;
    taken[i] = std::min(room, queue_[i].num_images);
    room -= taken[i];
  }
  // The chosen images join in arrival order.
  for (size_t i = 0; i < queue_.size(); ++i) {
    Queued& q = queue_[i];
    for (int k = 0; k < taken[i]; ++k) {
      const ScheduledSample sample{SampleId{q.request_id, q.first_image + k}, q.shape.steps,
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
    --models_.at(q.shape.model).queued_requests;
    return true;
  });
}

bool StepScheduler::Schedule(int worker_index, absl::Time now, Iteration* out) {
  Worker& worker = workers_[worker_index];
  // The candidate whose turn it is: the earliest turn wins; running sets win ties.
  RunningSet* chosen = nullptr;
  for (RunningSet& set : worker.sets) {
    if (chosen == nullptr || set.turn < chosen->turn) chosen = &set;
  }
  const Queued* opener = nullptr;
  for (const Queued& q : queue_) {  // arrival order: the first that may open is the oldest
    if (chosen != nullptr && q.arrived >= chosen->turn) break;
    if (Holds(worker, q.shape.model) && MayOpen(worker, q.shape)) {
      opener = &q;
      break;
    }
  }
  if (opener != nullptr) {
    RunningSet set;
    set.id = next_set_++;
    set.shape = opener->shape;
    set.turn = now;
    worker.sets.push_back(std::move(set));
    chosen = &worker.sets.back();
  }
  if (chosen == nullptr) return false;

  *out = Iteration();
  out->worker = worker_index;
  out->set = chosen->id;
  out->model = chosen->shape.model;
  out->width = chosen->shape.width;
  out->height = chosen->shape.height;
  std::erase_if(chosen->samples, [&](const RunningSample& sample) {
    if (sample.leaving) out->left.push_back(sample.sample.id);
    return sample.leaving;
  });
  Join(*chosen, out);
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
  if (set == nullptr) return outcome;
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
  if (set->samples.empty()) CloseSet(iteration.worker, iteration.set);
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

bool StepScheduler::HasWork(int worker_index) const {
  const Worker& worker = workers_[worker_index];
  if (!worker.sets.empty()) return true;
  return std::any_of(queue_.begin(), queue_.end(), [&](const Queued& q) {
    return Holds(worker, q.shape.model) && MayOpen(worker, q.shape);
  });
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
