// The decisions of batching, apart from their execution: which queued images form or join a
// running set, which samples leave it, and which set runs its next step on a device. A plain data
// structure (no threads, no clock of its own, not thread-safe): the engine calls it under its
// mutex with the time it read, and tests step it by hand.
//
// A running set lives on one worker (device) and holds samples of one model and size; each
// sample has its own schedule (step count, sampler) and step index, and one denoiser call per
// step serves every sample of the set. An iteration on a worker is:
//   Schedule(): pick a set (the one whose turn it is, or a new one), let queued images join it,
//     list the samples that left since the last iteration (cancelled, expired: Remove()) -> the
//     executor releases those, starts the joiners and runs one step for the set;
//   Update(): every stepped sample counts one step; the ones that reached their step count
//     leave the set at once (the executor decodes them together, in a batch of their own).
// A set that runs out of samples closes.
//
// Each model has one of two policies (BatchingOptions::mode):
//   step-level: one set per (model, width, height) and device, any mix of step counts,
//     samplers and image inputs; queued images join at every step boundary (fewest steps to
//     run first, see Schedule); sets of one device take turns step by step.
//   request-level: a set holds images of one BatchKey (model, steps, size, sampler, strength,
//     mask), forms once and runs to its end on its device before the device takes anything
//     else; nothing joins after its first step. It forms when it is ready: full (or the next
//     queued request of its key does not fit), its first image has waited max_queue_delay, or
//     the engine drains. A request that fits in one set stays whole; a larger one is split,
//     filling sets in turn (image i keeps its index wherever it runs).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/batching_mode.h"
#include "engine/pipeline.h"

namespace tlcm::engine {

// A request's images as the scheduler sees them: `key` decides which set they may join (under
// step-level batching only its model, width and height bind); key.steps is each image's own step
// count, of which an image input (img2img, inpainting) skips the first start_step: it joins at
// that step and runs key.steps - start_step.
struct SampleShape {
  BatchKey key;
  int start_step = 0;  // in [0, key.steps)
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
  bool request_level = false;             // the set is a request-level batch
  std::vector<SampleId> left;             // release these: they left since the last iteration
  std::vector<ScheduledSample> joined;    // encode these: they join before this step
  std::vector<ScheduledSample> stepping;  // one denoiser call for these (joiners included),
                                          // in set order; empty when every sample left
};

// The outcome of an iteration's step, from Update().
struct StepOutcome {
  std::vector<SampleId> finished;  // reached their step count: decode these now
  std::vector<SampleId> left;      // removed during the step: release these, no image
  bool closed = false;             // no sample is left: the set closed
};

class StepScheduler {
 public:
  // A model's policy and limits (max_batch_size: samples per set; max_queue_size: requests with
  // queued images, beyond which Enqueue refuses). Models and workers are added before requests
  // come.
  void AddModel(const std::string& model, const BatchingOptions& batching);
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

  // From now on request-level sets no longer wait to fill (the engine drains).
  void StopWaitingToFill() { flush_ = true; }

  // Plans the next iteration on `worker`; false when it has nothing to do. A running
  // request-level set keeps the worker until it closes. Otherwise the set whose turn it is:
  // among the worker's running sets and the sets queued images could open, the one that has
  // waited longest (its last step, or its oldest image's arrival), so sets of different sizes
  // on one device take turns step by step.
  //   Step-level: queued images may open a set of their (model, width, height) when the worker
  //   has none and no worker has one with room. Joiners come up to max_batch_size, fewest steps
  //   to run first (steps - start_step; ties: arrival order), so that short requests do not
  //   queue behind long ones for a whole set's run; an image that max_batch_size later images
  //   have overtaken is due and goes first (due images in arrival order), which bounds how long
  //   a long request can wait. Nothing waits to fill: a set that starts small fills at later
  //   step boundaries.
  //   Request-level: queued images open a set of their key once it is ready (see the top), and
  //   only then join it, in arrival order.
  // A request may be split over several sets; image i keeps its index.
  bool Schedule(int worker, absl::Time now, Iteration* out);

  // The executor ran `iteration`'s step (at `now`). Every stepping sample counts one step.
  StepOutcome Update(const Iteration& iteration, absl::Time now);

  // The iteration's set failed (encoding or the step): every sample of the set leaves, the set
  // closes. Returns the requests that had samples in it.
  std::vector<uint64_t> Fail(const Iteration& iteration);

  // Whether Schedule(worker, now) would find work.
  bool HasWork(int worker, absl::Time now) const;
  // When Schedule(worker) will next find work if nothing else happens: a request-level set
  // becoming ready. A time at or before now when there is work now (absl::InfinitePast() for a
  // running set, a full set or one that need not wait); absl::InfiniteFuture() when nothing
  // queued can become ready by waiting.
  absl::Time NextReadyTime(int worker) const;

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
    SampleShape shape;           // its first sample's: the key binds as its model's policy says
    bool request_level = false;  // formed once, runs to its end, takes no joiners
    std::vector<RunningSample> samples;
    absl::Time turn;  // when it last ran a step (or opened)
  };
  struct Worker {
    std::vector<std::string> models;
    std::vector<RunningSet> sets;
  };
  struct Model {
    BatchingOptions batching;
    int queued_requests = 0;
  };

  static bool Holds(const Worker& worker, const std::string& model);
  bool RequestLevel(const std::string& model) const;
  // Whether samples of `a` and `b` may share a set under their model's policy.
  bool SameSet(const SampleShape& a, const SampleShape& b) const;
  // Whether queued `q` may open a new set on `worker` at `now`. Step-level: no set of its shape
  // there, and none with room elsewhere. Request-level: its key's next set is ready.
  bool MayOpen(const Worker& worker, const Queued& q, absl::Time now) const;
  // Request-level: how many images of each queue entry the next set of `q`'s key takes
  // (indexed like queue_), and whether that set is full or closed (the next entry of the key
  // did not fit) and so need not wait to fill.
  struct Formation {
    std::vector<int> taken;
    bool closed = false;
  };
  Formation FormRequestSet(const Queued& q) const;
  // Request-level: when the set `q` would open becomes ready.
  absl::Time ReadyTime(const Queued& q) const;
  // Whether queued `a` joins before `b` (both of one set's shape): due ones first, then fewer
  // steps to run; false on a tie (arrival order decides).
  static bool JoinsBefore(const Queued& a, const Queued& b, int max_batch_size);
  // Step-level: which queued images join `set`, up to max_batch_size (JoinsBefore chooses
  // them); indexed like queue_.
  std::vector<int> ChooseJoiners(const RunningSet& set) const;
  // Moves `taken[i]` images of each queue entry i into `set`, in arrival order.
  void Join(RunningSet& set, const std::vector<int>& taken, Iteration* out);
  RunningSet* FindSet(int worker, uint64_t id);
  void CloseSet(int worker, uint64_t id);

  absl::flat_hash_map<std::string, Model> models_;
  std::vector<Worker> workers_;
  std::deque<Queued> queue_;                  // arrival order
  absl::flat_hash_set<uint64_t> queued_ids_;  // requests with an entry in queue_ (one each)
  uint64_t next_set_ = 1;
  bool flush_ = false;  // StopWaitingToFill was called
};

}  // namespace tlcm::engine
