// The device workers: each loads and warms up its pipelines, then runs what the scheduler
// thread hands it: request-level batches (Pipeline::Run) and step-level iterations
// (SampleStepper: joins, one step, decodes).
#include <algorithm>
#include <exception>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/engine_core.h"

namespace tlcm::engine::internal {

namespace {

// The one place where a worker turns exceptions from pipeline code (the factory, Run and
// everything Run calls back) into statuses: out of memory -> RESOURCE_EXHAUSTED, anything else
// -> INTERNAL. Only the first line of the exception text is kept (LibTorch appends backtraces).
template <typename T, typename F>
absl::StatusOr<T> GuardedCall(F&& call) {
  try {
    return call();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of host memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    if (what.find("out of memory") != std::string::npos) {
      return absl::ResourceExhaustedError(what);
    }
    return absl::InternalError(absl::StrCat("exception: ", what));
  } catch (...) {
    return absl::InternalError("exception of unknown type");
  }
}

// What the observer hears about one Run of `batch_size` images on `device`.
BatchReport MakeBatchReport(const std::string& device, int worker, const BatchKey& key,
                            int batch_size, const absl::StatusOr<StageTimings>& timings,
                            double worker_ms) {
  BatchReport report;
  report.model = key.model;
  report.device = device;
  report.worker = worker;
  report.batch_size = batch_size;
  report.steps = key.steps;
  report.width = key.width;
  report.height = key.height;
  report.status = timings.status();
  report.worker_ms = worker_ms;
  if (timings.ok()) {
    report.text_encode_ms = timings->text_encode_ms;
    report.denoise_ms = timings->denoise_ms;
    report.decode_ms = timings->decode_ms;
    report.step_ms = key.steps > 0 ? timings->denoise_ms / key.steps : 0;
    report.prompt_cache_hits = timings->prompt_cache_hits;
    report.prompt_cache_misses = timings->prompt_cache_misses;
  }
  return report;
}

}  // namespace

void EngineCore::WorkerMain(Worker& worker) {
  const absl::Status loaded = LoadAndWarmUp(worker);
  {
    absl::MutexLock lock(&mu_);
    if (loaded.ok()) {
      slots_[worker.index].state = WorkerState::kIdle;
      ++ready_workers_;
    } else {
      slots_[worker.index].state = WorkerState::kFailed;
      if (load_status_.ok()) load_status_ = loaded;
    }
    if (observer_ != nullptr) observer_->OnWorkerReady(worker.device, worker.index, loaded);
    state_cv_.SignalAll();
    scheduler_cv_.Signal();
  }
  if (!loaded.ok()) return;
  while (true) {
    std::optional<Batch> batch;
    {
      absl::MutexLock lock(&mu_);
      WorkerSlot& slot = slots_[worker.index];
      while (!stopping_ && !slot.assigned.has_value() && !slot.stepping) worker.cv.Wait(&mu_);
      if (stopping_) return;  // every request is terminal by now (Stop follows Drain)
      batch = std::move(slot.assigned);
      slot.assigned.reset();
      slot.stepping = false;
    }
    if (batch.has_value()) {
      RunBatch(worker, *batch);
    } else {
      RunSteps(worker);
    }
    absl::MutexLock lock(&mu_);
    slots_[worker.index].state = WorkerState::kIdle;
    scheduler_cv_.Signal();
  }
}

absl::Status EngineCore::LoadAndWarmUp(Worker& worker) {
  for (int model_id : worker.models) {
    const ModelOptions& options = models_[model_id].options;
    const std::string context =
        absl::StrCat("loading model \"", options.spec.name, "\" on ", worker.device);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::UnavailableError(absl::StrCat(context, ": engine stopped"));
    }
    absl::StatusOr<std::unique_ptr<Pipeline>> created = GuardedCall<std::unique_ptr<Pipeline>>(
        [&] { return factory_(options.spec, worker.device); });
    if (!created.ok()) return Annotate(created.status(), context);
    if (*created == nullptr) {
      return absl::InternalError(absl::StrCat(context, ": the factory returned no pipeline"));
    }
    if (options.batching.mode == BatchingMode::kStep && (*created)->stepper() == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(context,
                       ": batching mode \"step\" needs a pipeline that runs step by "
                       "step, and this one only runs whole batches"));
    }
    ModelInfo info = (*created)->info();
    info.name = options.spec.name;
    if (info.size_multiple < 1 || info.min_steps < 1 || info.min_steps > info.max_steps ||
        info.default_steps < info.min_steps || info.default_steps > info.max_steps ||
        info.default_width < 1 || info.default_height < 1 || info.max_pixels < 1) {
      return absl::InternalError(
          absl::StrCat(context, ": the pipeline reports inconsistent limits (size_multiple ",
                       info.size_multiple, ", steps ", info.min_steps, "..", info.max_steps,
                       " default ", info.default_steps, ", default size ", info.default_width, "x",
                       info.default_height, ", max_pixels ", info.max_pixels, ")"));
    }
    if (options.warmup) {
      absl::Status warm = WarmUp(worker, **created, info, options);
      if (!warm.ok()) {
        return Annotate(
            warm, absl::StrCat("warming up model \"", options.spec.name, "\" on ", worker.device));
      }
    }
    worker.pipelines[options.spec.name] = *std::move(created);
    absl::MutexLock lock(&mu_);
    ModelState& state = model_states_[model_id];
    if (!state.info.has_value()) state.info = info;
    ++state.loaded_workers;
  }
  return absl::OkStatus();
}

absl::Status EngineCore::WarmUp(Worker& worker, Pipeline& pipeline, const ModelInfo& info,
                                const ModelOptions& options) {
  BatchKey key;
  key.model = info.name;
  key.steps = options.warmup_steps > 0 ? options.warmup_steps : info.min_steps;
  key.width = options.warmup_width > 0 ? options.warmup_width : info.default_width;
  key.height = options.warmup_height > 0 ? options.warmup_height : info.default_height;
  key.sampler = info.samplers.empty() ? "" : info.samplers.front();
  ImageJob job;
  job.prompt = "warm-up";
  job.seed = 0;
  job.guidance_scale = info.default_guidance_scale;
  BatchCallbacks callbacks;
  callbacks.should_drop = [this](size_t) {
    absl::MutexLock lock(&mu_);
    return stopping_;
  };
  callbacks.on_step = [](int, int) {};
  callbacks.wants_preview = [](size_t) { return false; };
  callbacks.on_preview = [](size_t, int, const RgbImage&) {};
  callbacks.on_image = [](size_t, const RgbImage&) {};
  absl::StatusOr<StageTimings> timings =
      GuardedCall<StageTimings>([&] { return pipeline.Run(key, {job}, callbacks); });
  ReportMemory(worker, pipeline);
  if (observer_ != nullptr) {
    absl::MutexLock lock(&mu_);
    observer_->OnBatchDone(MakeBatchReport(worker.device, worker.index, key, 1, timings,
                                           /*worker_ms=*/0),
                           /*warmup=*/true);
  }
  return timings.status();
}

void EngineCore::BeginRunningLocked(const Worker& worker, const std::string& model,
                                    absl::Time now) {
  WorkerSlot& slot = slots_[worker.index];
  slot.running = true;
  slot.progressed = now;
  slot.running_model = model;
}

void EngineCore::RunBatch(Worker& worker, const Batch& batch) {
  const BatchKey& key = batch.key;
  const std::string context = absl::StrCat("model \"", key.model, "\" on ", worker.device);
  const absl::Time started_at = clock_->Now();
  std::vector<LiveChunk> live;
  std::vector<std::pair<size_t, int>> job_owner;  // job -> (live chunk, image index)
  std::vector<ImageJob> jobs;
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    BeginRunningLocked(worker, key.model, started_at);
    for (const QueuedChunk& chunk : batch.chunks) {
      auto it = active_.find(chunk.request_id);
      if (it == active_.end()) continue;  // ended between dispatch and here
      live.push_back(LiveChunk{chunk, it->second.request, std::make_shared<ChunkProgress>()});
    }
    int batch_size = 0;
    for (const LiveChunk& c : live) batch_size += c.chunk.num_images;
    for (size_t l = 0; l < live.size(); ++l) {
      const LiveChunk& c = live[l];
      const Request& r = *c.request;
      Active& active = active_.at(r.id);
      active.metrics.batch_size = std::max(active.metrics.batch_size, batch_size);
      StartImagesLocked(active, worker, batch_size, c.chunk.first_image, c.chunk.num_images,
                        started_at, &flush);
      for (int i = c.chunk.first_image; i < c.chunk.first_image + c.chunk.num_images; ++i) {
        jobs.push_back(r.Job(i));
        job_owner.emplace_back(l, i);
      }
    }
  }
  Flush(flush);
  // The worker is busy until here even when every chunk ended before it started.
  const auto finish_running = [&] {
    absl::MutexLock lock(&mu_);
    slots_[worker.index].running = false;
  };
  if (live.empty()) {
    finish_running();
    return;
  }

  BatchCallbacks callbacks;
  callbacks.should_drop = [&](size_t job) {
    const Request& r = *live[job_owner[job].first].request;
    FlushList flush;
    bool drop = false;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = clock_->Now();
      slots_[worker.index].progressed = now;
      if (!IsActiveLocked(r.id)) {
        drop = true;
      } else if (now >= r.request.deadline) {
        FinishLocked(r.id, absl::DeadlineExceededError("the deadline passed while running"),
                     &flush);
        drop = true;
      }
    }
    Flush(flush);
    return drop;
  };
  callbacks.on_step = [&](int step, int total) {
    FlushList flush;
    {
      absl::MutexLock lock(&mu_);
      slots_[worker.index].progressed = clock_->Now();
      for (const LiveChunk& c : live) {
        StepEvent event{step, total, c.chunk.first_image, c.chunk.num_images};
        PostLocked(
            c.request->id, [event](GenerationEventSink& s) { s.OnStep(event); }, &flush);
      }
    }
    Flush(flush);
  };
  callbacks.wants_preview = [&](size_t job) {
    const Request& r = *live[job_owner[job].first].request;
    if (!r.request.previews) return false;
    absl::MutexLock lock(&mu_);
    return IsActiveLocked(r.id);
  };
  callbacks.on_preview = [&](size_t job, int step, RgbImage preview) {
    const LiveChunk& c = live[job_owner[job].first];
    SubmitEncode(PreviewEncodeJob(c.request, c.progress, c.chunk.num_images, job_owner[job].second,
                                  step, std::move(preview), context));
  };
  callbacks.on_image = [&](size_t job, RgbImage image) {
    const LiveChunk& c = live[job_owner[job].first];
    {
      absl::MutexLock lock(&mu_);
      slots_[worker.index].progressed = clock_->Now();
    }
    SubmitEncode(ImageEncodeJob(c.request, c.progress, c.chunk.num_images, job_owner[job].second,
                                std::move(image), context));
  };

  Pipeline& pipeline = *worker.pipelines.at(key.model);
  const absl::StatusOr<StageTimings> timings =
      GuardedCall<StageTimings>([&] { return pipeline.Run(key, jobs, callbacks); });
  ReportMemory(worker, pipeline);

  {
    absl::MutexLock lock(&mu_);
    slots_[worker.index].running = false;
    if (timings.ok()) RecordDenoiseRateLocked(key, static_cast<int>(jobs.size()), *timings);
    if (observer_ != nullptr) {
      observer_->OnBatchDone(
          MakeBatchReport(worker.device, worker.index, key, static_cast<int>(jobs.size()), timings,
                          Millis(clock_->Now() - started_at)),
          /*warmup=*/false);
    }
    for (const LiveChunk& c : live) {
      auto it = active_.find(c.request->id);
      if (it == active_.end()) continue;  // ended while running (cancel, deadline, drain)
      Active& active = it->second;
      if (!timings.ok()) {
        FinishLocked(c.request->id, Annotate(timings.status(), context), &flush);
        continue;
      }
      active.metrics.text_encode_ms += timings->text_encode_ms;
      active.metrics.denoise_ms += timings->denoise_ms;
      active.metrics.decode_ms += timings->decode_ms;
      c.progress->run_done = true;
      SettleChunkLocked(c.request->id, *c.progress, c.chunk.num_images, context, &flush);
    }
  }
  Flush(flush);
}

void EngineCore::RunSteps(Worker& worker) {
  const auto eligible = [&](const std::string& m) { return worker.model_names.contains(m); };
  while (true) {
    Iteration iteration;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      const absl::Time now = clock_->Now();
      // A request-level batch that is ready goes first: the worker turns idle, the scheduler
      // thread hands the batch over, and the sets go on after it.
      if (queue_.NextReadyTime(drain_state_ != DrainState::kServing, eligible) <= now) return;
      if (!steps_.Schedule(worker.index, now, &iteration)) return;
      if (!iteration.joined.empty()) ReportQueueDepthLocked(iteration.model);
    }
    RunIteration(worker, iteration);
  }
}

void EngineCore::FailIteration(Worker& worker, const Iteration& iteration,
                               const absl::Status& status) {
  std::vector<SampleId> samples;
  for (const ScheduledSample& s : iteration.stepping) samples.push_back(s.id);
  for (const SampleId& id : samples) worker.samples.erase(id);
  // The pipeline has released the samples of the failed call; these are the rest of the set.
  worker.pipelines.at(iteration.model)->stepper()->Release(samples);
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    const std::string context = absl::StrCat("model \"", iteration.model, "\" on ", worker.device);
    for (uint64_t id : steps_.Fail(iteration)) FinishLocked(id, Annotate(status, context), &flush);
  }
  Flush(flush);
}

void EngineCore::RunIteration(Worker& worker, const Iteration& iteration) {
  SampleStepper& stepper = *worker.pipelines.at(iteration.model)->stepper();
  const std::string context = absl::StrCat("model \"", iteration.model, "\" on ", worker.device);
  const absl::Time started_at = clock_->Now();
  const int set_size = static_cast<int>(iteration.stepping.size());
  // The requests of the set's samples (shared: they outlive a request's end while encoding).
  absl::flat_hash_map<uint64_t, std::shared_ptr<const Request>> requests;
  std::vector<SampleSpec> joiners;
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    BeginRunningLocked(worker, iteration.model, started_at);
    for (const ScheduledSample& s : iteration.stepping) {
      auto it = active_.find(s.id.request_id);
      if (it == active_.end()) continue;  // ended since Schedule: leaves at the next iteration
      Active& active = it->second;
      requests.emplace(s.id.request_id, active.request);
      active.metrics.batch_size = std::max(active.metrics.batch_size, set_size);
    }
    for (const ScheduledSample& s : iteration.joined) {
      auto it = active_.find(s.id.request_id);
      if (it == active_.end()) continue;
      Active& active = it->second;
      const Request& r = *active.request;
      StartImagesLocked(active, worker, set_size, s.id.image, 1, started_at, &flush);
      joiners.push_back(SampleSpec{s.id, r.Job(s.id.image), s.steps, r.resolved.key.sampler,
                                   r.resolved.key.strength});
    }
  }
  Flush(flush);
  const auto finish_running = [&] {
    absl::MutexLock lock(&mu_);
    slots_[worker.index].running = false;
  };

  // 1. Samples that left (cancelled, expired, failed elsewhere) free their state.
  for (const SampleId& id : iteration.left) worker.samples.erase(id);
  if (!iteration.left.empty()) stepper.Release(iteration.left);
  // 2. Joiners: prompt encoding and initial latents. (A joiner whose request ended since
  // Schedule does not start; it leaves at the next iteration.)
  StageTimings start_timings;
  if (!joiners.empty()) {
    for (const SampleSpec& spec : joiners) {
      worker.samples[spec.id] = std::make_shared<ChunkProgress>();
    }
    absl::StatusOr<StageTimings> started = GuardedCall<StageTimings>(
        [&] { return stepper.Start(iteration.width, iteration.height, joiners); });
    if (!started.ok()) {
      finish_running();
      FailIteration(worker, iteration, started.status());
      return;
    }
    start_timings = *started;
  }
  // 3. One denoiser call for the set (the samples that started); it stops inside once no
  // sample of it is wanted.
  std::vector<SampleId> set;
  for (const ScheduledSample& s : iteration.stepping) {
    if (worker.samples.contains(s.id)) set.push_back(s.id);
  }
  StageTimings step_timings;
  if (!set.empty()) {
    const auto interrupt = [&] {
      absl::MutexLock lock(&mu_);
      for (const SampleId& id : set) {
        if (IsActiveLocked(id.request_id)) return false;
      }
      return true;
    };
    absl::StatusOr<StageTimings> stepped =
        GuardedCall<StageTimings>([&] { return stepper.Step(set, interrupt); });
    if (!stepped.ok() && !absl::IsCancelled(stepped.status())) {
      finish_running();
      FailIteration(worker, iteration, stepped.status());
      return;
    }
    if (stepped.ok()) step_timings = *stepped;
  }

  // 4. Bookkeeping: step events, stage times, who finished.
  const BatchKey key{iteration.model, 1, iteration.width, iteration.height, ""};
  StepOutcome outcome;
  FlushList step_flush;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    slots_[worker.index].progressed = now;
    outcome = steps_.Update(iteration, now);
    for (const ScheduledSample& s : iteration.joined) {
      auto it = active_.find(s.id.request_id);
      if (it == active_.end()) continue;
      it->second.metrics.text_encode_ms += start_timings.text_encode_ms / joiners.size();
    }
    for (const auto& [id, request] : requests) {
      auto it = active_.find(id);
      if (it != active_.end()) it->second.metrics.denoise_ms += step_timings.denoise_ms;
    }
    for (const ScheduledSample& s : iteration.stepping) {
      StepEvent event{s.step + 1, s.steps, s.id.image, 1};
      PostLocked(
          s.id.request_id, [event](GenerationEventSink& sink) { sink.OnStep(event); }, &step_flush);
    }
    RecordDenoiseRateLocked(key, static_cast<int>(set.size()), step_timings);
  }
  Flush(step_flush);
  for (const SampleId& id : outcome.left) worker.samples.erase(id);
  if (!outcome.left.empty()) stepper.Release(outcome.left);

  // 5. Previews of the samples that go on.
  for (const ScheduledSample& s : iteration.stepping) {
    const int step = s.step + 1;
    if (step >= s.steps) continue;
    auto request = requests.find(s.id.request_id);
    if (request == requests.end() || !request->second->request.previews) continue;
    {
      absl::MutexLock lock(&mu_);
      if (!IsActiveLocked(s.id.request_id)) continue;
    }
    absl::StatusOr<RgbImage> preview = GuardedCall<RgbImage>([&] { return stepper.Preview(s.id); });
    if (!preview.ok()) {
      FlushList failed;
      {
        absl::MutexLock lock(&mu_);
        FinishLocked(s.id.request_id, Annotate(preview.status(), context), &failed);
      }
      Flush(failed);
      continue;
    }
    SubmitEncode(PreviewEncodeJob(request->second, worker.samples.at(s.id), 1, s.id.image, step,
                                  *std::move(preview), context));
  }

  // 6. Finished samples are decoded at once, in a batch of their own.
  StageTimings decode_timings;
  if (!outcome.finished.empty()) {
    FlushList done_flush;
    std::vector<RgbImage> images;
    absl::StatusOr<StageTimings> decoded =
        GuardedCall<StageTimings>([&] { return stepper.Decode(outcome.finished, &images); });
    std::vector<std::shared_ptr<ChunkProgress>> progress;
    for (const SampleId& id : outcome.finished) {
      progress.push_back(worker.samples.at(id));
      worker.samples.erase(id);
    }
    if (decoded.ok() && images.size() != outcome.finished.size()) {
      decoded = absl::InternalError(absl::StrCat("the pipeline decoded ", images.size(), " of ",
                                                 outcome.finished.size(), " samples"));
    }
    if (decoded.ok()) {
      for (size_t f = 0; f < outcome.finished.size(); ++f) {
        const SampleId& id = outcome.finished[f];
        auto request = requests.find(id.request_id);
        if (request == requests.end()) continue;
        SubmitEncode(ImageEncodeJob(request->second, progress[f], 1, id.image, std::move(images[f]),
                                    context));
      }
    }
    {
      absl::MutexLock lock(&mu_);
      for (size_t f = 0; f < outcome.finished.size(); ++f) {
        const uint64_t id = outcome.finished[f].request_id;
        auto it = active_.find(id);
        if (it == active_.end()) continue;
        if (!decoded.ok()) {
          FinishLocked(id, Annotate(decoded.status(), context), &done_flush);
          continue;
        }
        decode_timings.decode_ms = decoded->decode_ms;
        it->second.metrics.decode_ms += decoded->decode_ms / outcome.finished.size();
        progress[f]->run_done = true;
        SettleChunkLocked(id, *progress[f], 1, context, &done_flush);
      }
    }
    Flush(done_flush);
  }
  ReportMemory(worker, *worker.pipelines.at(iteration.model));
  // The observer hears of the iteration as of a batch of one step.
  if (observer_ != nullptr) {
    StageTimings reported = step_timings;
    reported.text_encode_ms = start_timings.text_encode_ms;
    reported.prompt_cache_hits = start_timings.prompt_cache_hits;
    reported.prompt_cache_misses = start_timings.prompt_cache_misses;
    reported.decode_ms = decode_timings.decode_ms;
    absl::MutexLock lock(&mu_);
    observer_->OnBatchDone(MakeBatchReport(worker.device, worker.index, key, set_size, reported,
                                           Millis(clock_->Now() - started_at)),
                           /*warmup=*/false);
  }
  finish_running();
}

void EngineCore::RecordDenoiseRateLocked(const BatchKey& key, int images,
                                         const StageTimings& timings) {
  const double work = MegapixelSteps(key, images);
  if (work <= 0 || timings.denoise_ms <= 0) return;
  double& fastest = model_states_[model_index_.at(key.model)].fastest_ms_per_megapixel_step;
  const double rate = timings.denoise_ms / work;
  if (fastest == 0 || rate < fastest) fastest = rate;
}

void EngineCore::ReportMemory(const Worker& worker, const Pipeline& pipeline) {
  if (observer_ == nullptr) return;
  // A failed measurement is no reason to fail a batch: the gauge keeps its last value.
  absl::StatusOr<DeviceMemory> memory =
      GuardedCall<DeviceMemory>([&] { return pipeline.MemoryUsage(); });
  if (memory.ok()) observer_->OnDeviceMemory(worker.device, worker.index, *memory);
  absl::StatusOr<std::optional<AdapterCacheStats>> adapters =
      GuardedCall<std::optional<AdapterCacheStats>>([&] { return pipeline.AdapterStats(); });
  if (adapters.ok() && adapters->has_value()) {
    observer_->OnAdapterCache(pipeline.info().name, worker.device, worker.index, **adapters);
  }
}

}  // namespace tlcm::engine::internal
