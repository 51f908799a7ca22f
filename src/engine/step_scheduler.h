// The decisions of step-level ("continuous") batching, apart from their execution: which queued
// images join a running set, which samples leave it, and which set runs its next step on a
// device. A plain data structure (no threads, no clock of its own, not thread-safe): the engine
// calls it under its mutex with the time it read, and tests step it by hand.
//
// A running set lives on one worker (device) and holds samples of one (model, width, height):
// each sample has its own schedule (step count, sampler) and step index, so one denoiser call
// per step serves every sample of the set whatever the mix. An iteration on a worker is:
//   Schedule(): pick a set (the one whose turn it is), let queued compatible images join it up
//     to max_batch_size, list the samples that left since the last iteration (cancelled,
//     expired: Remove()) -> the executor releases those, encodes the joiners and runs one step
//     for the set;
//   Update(): every stepped sample counts one step; the ones that reached their step count
//     leave the set at once (the executor decodes them together, in a batch of their own).
// A set that runs out of samples closes. (Request-level batching, where a batch forms once per
// (model, size, steps, sampler) and runs to its end, is BatchQueue's.)
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/pipeline.h"

namespace tlcm::engine {

// A request's images as the scheduler sees them: (model, width, height) decides which set they
// may join; steps is each image's own step count, of which an image input (img2img, inpainting)
// skips the first start_step: it joins at that step and runs steps - start_step.
struct SampleShape {
  std::string model;
  int width = 0;   // pixels
  int height = 0;  // pixels
  int steps = 0;
  int start_step = 0;  // in [0, steps)
};

// A sample of a running set as the scheduler sees it.
struct ScheduledSample {
  SampleId id;
  int steps = 0;  // in all
  int step = 0;   // steps done before this iteration's denoiser call
};

// One iteration on a worker: what the executor does next, in this order.
struct Iteration {
  int worker = 0;
  uint64_t set = 0;  // the running set (ids unique within the scheduler, from 1)
  std::string model;
  int width = 0, height = 0;
  std::vector<SampleId> left;             // release these: they left since the last iteration
  std::vector<ScheduledSample> joined;    // encode these: they join before this step
  std::vector<ScheduledSample> stepping;  // one denoiser call for these (joiners included),
                                          // in set order; empty when every sample left
};

// The outcome of an iteration's step, from Update().
struct StepOutcome {
  std::vector<SampleId> finished;  // reached their step count: decode these now
  std::vector<SampleId> left;      // removed during the step: release these, no image
};

class StepScheduler {
 public:
  // Per-model limits (engine.h's BatchingOptions). Models and workers are added before requests
  // come.
  struct ModelLimits {
    int max_batch_size = 4;   // samples per running set (>= 1)
    int max_queue_size = 64;  // requests with queued images; beyond it Enqueue refuses (>= 1)
  };
  void AddModel(const std::string& model, ModelLimits limits);
  // Worker `worker` (0, 1, ... in order) runs sets of `models`.
  void AddWorker(std::vector<std::string> models);

  // Queues `num_images` images of request `request_id`. Returns the number of requests of the
  // same model queued ahead of it. Errors: RESOURCE_EXHAUSTED naming the model when its queue
  // already holds max_queue_size requests. Preconditions: the model was added, num_images >= 1,
  // the id is new.
  absl::StatusOr<int> Enqueue(uint64_t request_id, const SampleShape& shape, int num_images,
                              absl::Time now);

  // The request ended (cancelled, expired, failed): its queued images are dropped at once and
  // its running samples leave at their set's next iteration. Returns how many images were still
  // queued. No-op for an unknown id.
  int Remove(uint64_t request_id);

  // Plans the next iteration on `worker`; false when it has nothing to do. The set whose turn it
  // is: among the worker's running sets and the sets queued images could open (a (model, width,
  // height) with queued images, no set on this worker and no set with room on any worker), the
  // one that has waited longest (its last step, or its oldest image's arrival), so sets of
  // different sizes on one device take turns step by step. Joiners come up to max_batch_size,
  // fewest steps to run first (steps - start_step; ties: arrival order), so that short requests do
  // not queue behind long ones for a whole set's run; an image that max_batch_size later images
  // have overtaken is due and goes first (due images in arrival order), which bounds how long a
  // long request can wait. A request may be split over several sets, image i keeps its index.
  // Nothing waits to fill: a set that starts small fills at later step boundaries.
  bool Schedule(int worker, absl::Time now, Iteration* out);

  // The executor ran `iteration`'s step (at `now`). Every stepping sample counts one step.
  StepOutcome Update(const Iteration& iteration, absl::Time now);

  // The iteration's set failed (encoding or the step): every sample of the set leaves, the set
  // closes. Returns the requests that had samples in it.
  std::vector<uint64_t> Fail(const Iteration& iteration);

  // Whether Schedule(worker) would find work now.
  bool HasWork(int worker) const;

  // Requests of `model` with at least one image queued.
  int queued_requests(const std::string& model) const;
  // Samples in the worker's running sets.
  int running_samples(int worker) const;

 private:
  struct Queued {  // images [first_image, first_image + num_images) of one request, waiting
    uint64_t request_id = 0;
    SampleShape shape;
    int first_image = 0;
    int num_images = 0;
    absl::Time arrived;
    int overtaken = 0;  // images of later arrivals that joined a set while these waited
  };
  struct RunningSample {
    ScheduledSample sample;
    bool leaving = false;  // removed: leaves at the next iteration
  };
  struct RunningSet {
    uint64_t id = 0;
    SampleShape shape;  // model, width and height bind; steps is its first sample's
    std::vector<RunningSample> samples;
    absl::Time turn;  // when it last ran a step (or opened)
  };
  struct Worker {
    std::vector<std::string> models;
    std::vector<RunningSet> sets;
  };
  struct Limits {
    ModelLimits limits;
    int queued_requests = 0;
  };

  static bool Holds(const Worker& worker, const std::string& model);
  static bool SameSet(const SampleShape& a, const SampleShape& b);
  // Whether queued images of `shape` may open a new set on `worker`: no set of the shape there,
  // and none with room elsewhere.
  bool MayOpen(const Worker& worker, const SampleShape& shape) const;
  // Whether queued `a` joins before `b` (both of one set's shape): due ones first, then fewer
  // steps to run; false on a tie (arrival order decides).
  static bool JoinsBefore(const Queued& a, const Queued& b, int max_batch_size);
  // Moves queued images of `set`'s shape into it, up to max_batch_size: JoinsBefore chooses
  // them, and they join in arrival order.
  void Join(RunningSet& set, Iteration* out);
  RunningSet* FindSet(int worker, uint64_t id);
  void CloseSet(int worker, uint64_t id);

  absl::flat_hash_map<std::string, Limits> models_;
  std::vector<Worker> workers_;
  std::deque<Queued> queue_;                  // arrival order
  absl::flat_hash_set<uint64_t> queued_ids_;  // requests with an entry in queue_ (one each)
  uint64_t next_set_ = 1;
};

}  // namespace tlcm::engine
