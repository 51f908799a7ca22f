// The device workers: each loads and warms up its pipelines, then runs the iterations the
// StepScheduler plans for it (joins, one step, previews, decodes) whenever the scheduler thread
// says it has work.
#include <algorithm>
#include <exception>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/engine_core.h"
#include "engine/whole_batch.h"

namespace tlcm::engine::internal {

namespace {

// The one place where a worker turns exceptions from pipeline code (the factory and every
// pipeline call) into statuses: out of memory -> RESOURCE_EXHAUSTED, anything else
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

// What the observer hears about work of `model` at `width` x `height` on worker `worker`
// (`device`), before any stage was added.
BatchReport NewBatchReport(const std::string& device, int worker, const std::string& model,
                           int width, int height) {
  BatchReport report;
  report.model = model;
  report.device = device;
  report.worker = worker;
  report.width = width;
  report.height = height;
  return report;
}

// Calls `post(request_id, first_image, num_images, sample)` once per run of consecutive samples
// that belong to one request, have consecutive image indices and stand at the same step of the
// same schedule: a request-level chunk is one run, so its events are one per chunk.
template <typename F>
void ForEachRun(const std::vector<ScheduledSample>& samples, F&& post) {
  for (size_t i = 0; i < samples.size();) {
    const ScheduledSample& first = samples[i];
    size_t end = i + 1;
    while (end < samples.size() && samples[end].id.request_id == first.id.request_id &&
           samples[end].id.image == samples[end - 1].id.image + 1 &&
           samples[end].step == first.step && samples[end].steps == first.steps) {
      ++end;
    }
    post(first.id.request_id, first.id.image, static_cast<int>(end - i), first);
    i = end;
  }
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
    {
      absl::MutexLock lock(&mu_);
      WorkerSlot& slot = slots_[worker.index];
      while (!stopping_ && !slot.stepping) worker.cv.Wait(&mu_);
      if (stopping_) return;  // every request is terminal by now (Stop follows Drain)
      slot.stepping = false;
    }
    RunSteps(worker);
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
  WholeBatchHooks hooks;
  hooks.interrupt = [this] {
    absl::MutexLock lock(&mu_);
    return stopping_;
  };
  const absl::Time started_at = clock_->Now();
  absl::StatusOr<WholeBatch> batch =
      GuardedCall<WholeBatch>([&] { return RunWholeBatch(pipeline, key, {job}, hooks); });
  ReportMemory(worker, pipeline);
  BatchReport report =
      NewBatchReport(worker.device, worker.index, key.model, key.width, key.height);
  report.batch_size = 1;
  report.steps = key.steps;
  report.status = batch.status();
  if (batch.ok()) report.timings = batch->timings;
  report.step_ms = report.timings.denoise_ms / key.steps;
  report.worker_ms = Millis(clock_->Now() - started_at);
  if (observer_ != nullptr) {
    absl::MutexLock lock(&mu_);
    observer_->OnBatchDone(report, /*warmup=*/true);
  }
  // Stopped while warming up: nothing is left to serve, so nothing failed.
  if (absl::IsCancelled(batch.status())) return absl::OkStatus();
  return batch.status();
}

void EngineCore::BeginRunningLocked(const Worker& worker, const std::string& model,
                                    absl::Time now) {
  WorkerSlot& slot = slots_[worker.index];
  slot.running = true;
  slot.progressed = now;
  slot.running_model = model;
}

void EngineCore::RunSteps(Worker& worker) {
  while (true) {
    Iteration iteration;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      if (!steps_.Schedule(worker.index, clock_->Now(), &iteration)) return;
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
  worker.pipelines.at(iteration.model)->Release(samples);
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    const std::string context = absl::StrCat("model \"", iteration.model, "\" on ", worker.device);
    for (uint64_t id : steps_.Fail(iteration)) FinishLocked(id, Annotate(status, context), &flush);
  }
  Flush(flush);
}

void EngineCore::ReportIteration(Worker& worker, const Iteration& iteration, int set_size,
                                 const absl::Status& status, const StageTimings& timings,
                                 bool stepped, double worker_ms, bool closed) {
  if (observer_ == nullptr) return;
  BatchReport single;
  BatchReport* report = &single;
  if (iteration.request_level) {
    auto [it, inserted] = worker.batch_reports.try_emplace(iteration.set);
    report = &it->second;
  }
  if (report->model.empty()) {
    *report = NewBatchReport(worker.device, worker.index, iteration.model, iteration.width,
                             iteration.height);
  }
  report->batch_size = std::max(report->batch_size, set_size);
  if (stepped) ++report->steps;
  if (report->status.ok()) report->status = status;
  report->timings += timings;
  report->worker_ms += worker_ms;
  if (iteration.request_level && status.ok() && !closed) return;  // the batch goes on
  report->step_ms = report->steps > 0 ? report->timings.denoise_ms / report->steps : 0;
  {
    absl::MutexLock lock(&mu_);
    observer_->OnBatchDone(*report, /*warmup=*/false);
  }
  worker.batch_reports.erase(iteration.set);
}

void EngineCore::RunIteration(Worker& worker, const Iteration& iteration) {
  Pipeline& pipeline = *worker.pipelines.at(iteration.model);
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
    ForEachRun(iteration.joined, [&](uint64_t id, int first_image, int num_images,
                                     const ScheduledSample&) {
      auto it = active_.find(id);
      if (it == active_.end()) return;
      Active& active = it->second;
      const Request& r = *active.request;
      StartImagesLocked(active, worker, set_size, first_image, num_images, started_at, &flush);
      for (int image = first_image; image < first_image + num_images; ++image) {
        joiners.push_back(SampleSpec{SampleId{id, image}, r.Job(image), r.resolved.key.steps,
                                     r.resolved.key.sampler, r.resolved.key.strength});
      }
    });
  }
  Flush(flush);
  const auto finish_running = [&] {
    absl::MutexLock lock(&mu_);
    slots_[worker.index].running = false;
  };
  const auto fail = [&](const absl::Status& status, const StageTimings& timings) {
    ReportMemory(worker, pipeline);
    finish_running();
    ReportIteration(worker, iteration, set_size, status, timings, /*stepped=*/false,
                    Millis(clock_->Now() - started_at), /*closed=*/true);
    FailIteration(worker, iteration, status);
  };

  // 1. Samples that left (cancelled, expired, failed elsewhere) free their state.
  for (const SampleId& id : iteration.left) worker.samples.erase(id);
  if (!iteration.left.empty()) pipeline.Release(iteration.left);
  // 2. Joiners: prompt encoding and initial latents. (A joiner whose request ended since
  // Schedule does not start; it leaves at the next iteration.)
  StageTimings timings;  // of this iteration's calls
  if (!joiners.empty()) {
    for (const SampleSpec& spec : joiners) {
      worker.samples[spec.id] = std::make_shared<SampleProgress>();
    }
    absl::StatusOr<StageTimings> started = GuardedCall<StageTimings>(
        [&] { return pipeline.Start(iteration.width, iteration.height, joiners); });
    if (!started.ok()) return fail(started.status(), timings);
    timings = *started;
  }
  // 3. One denoiser call for the set (the samples that started); it stops inside once no
  // sample of it is wanted.
  std::vector<SampleId> set;
  for (const ScheduledSample& s : iteration.stepping) {
    if (worker.samples.contains(s.id)) set.push_back(s.id);
  }
  bool stepped = false;
  if (!set.empty()) {
    const auto interrupt = [&] {
      absl::MutexLock lock(&mu_);
      for (const SampleId& id : set) {
        if (IsActiveLocked(id.request_id)) return false;
      }
      return true;
    };
    absl::StatusOr<StageTimings> step =
        GuardedCall<StageTimings>([&] { return pipeline.Step(set, interrupt); });
    if (!step.ok() && !absl::IsCancelled(step.status())) return fail(step.status(), timings);
    if (step.ok()) {
      timings.denoise_ms = step->denoise_ms;
      stepped = true;
    }
  }

  // 4. Bookkeeping: step events, stage times, who finished.
  StepOutcome outcome;
  FlushList step_flush;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    slots_[worker.index].progressed = now;
    outcome = steps_.Update(iteration, now);
    for (const SampleSpec& joiner : joiners) {
      auto it = active_.find(joiner.id.request_id);
      if (it == active_.end()) continue;
      it->second.metrics.text_encode_ms += timings.text_encode_ms / joiners.size();
    }
    for (const auto& [id, request] : requests) {
      auto it = active_.find(id);
      if (it != active_.end()) it->second.metrics.denoise_ms += timings.denoise_ms;
    }
    ForEachRun(iteration.stepping,
               [&](uint64_t id, int first_image, int num_images, const ScheduledSample& s) {
                 StepEvent event{s.step + 1, s.steps, first_image, num_images};
                 PostLocked(
                     id, [event](GenerationEventSink& sink) { sink.OnStep(event); }, &step_flush);
               });
    if (stepped) {
      RecordDenoiseRateLocked(iteration.model, iteration.width, iteration.height,
                              static_cast<int>(set.size()), timings.denoise_ms);
    }
  }
  Flush(step_flush);
  for (const SampleId& id : outcome.left) worker.samples.erase(id);
  if (!outcome.left.empty()) pipeline.Release(outcome.left);

  // 5. Previews of the samples that go on.
  for (const ScheduledSample& s : iteration.stepping) {
    const int step = s.step + 1;
    if (step >= s.steps) continue;
    auto request = requests.find(s.id.request_id);
    if (request == requests.end() || !request->second->request.previews) continue;
    if (!worker.samples.contains(s.id)) continue;
    {
      absl::MutexLock lock(&mu_);
      if (!IsActiveLocked(s.id.request_id)) continue;
    }
    absl::StatusOr<RgbImage> preview =
        GuardedCall<RgbImage>([&] { return pipeline.Preview(s.id); });
    if (!preview.ok()) {
      FlushList failed;
      {
        absl::MutexLock lock(&mu_);
        FinishLocked(s.id.request_id, Annotate(preview.status(), context), &failed);
      }
      Flush(failed);
      continue;
    }
    SubmitEncode(MakeEncodeJob(request->second, worker.samples.at(s.id), s.id.image, step,
                               *std::move(preview), context));
  }

  // 6. Finished samples are decoded at once, in a batch of their own.
  absl::Status decode_status;
  if (!outcome.finished.empty()) {
    FlushList done_flush;
    std::vector<RgbImage> images;
    absl::StatusOr<StageTimings> decoded =
        GuardedCall<StageTimings>([&] { return pipeline.Decode(outcome.finished, &images); });
    std::vector<std::shared_ptr<SampleProgress>> progress;
    for (const SampleId& id : outcome.finished) {
      progress.push_back(worker.samples.at(id));
      worker.samples.erase(id);
    }
    if (decoded.ok() && images.size() != outcome.finished.size()) {
      decoded = absl::InternalError(absl::StrCat("the pipeline decoded ", images.size(), " of ",
                                                 outcome.finished.size(), " samples"));
    }
    if (decoded.ok()) {
      timings.decode_ms = decoded->decode_ms;
      for (size_t f = 0; f < outcome.finished.size(); ++f) {
        const SampleId& id = outcome.finished[f];
        auto request = requests.find(id.request_id);
        if (request == requests.end()) continue;
        SubmitEncode(MakeEncodeJob(request->second, progress[f], id.image, std::nullopt,
                                   std::move(images[f]), context));
      }
    } else {
      decode_status = decoded.status();
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
        it->second.metrics.decode_ms += decoded->decode_ms / outcome.finished.size();
        progress[f]->decoded = true;
        SettleSampleLocked(id, *progress[f], context, &done_flush);
      }
    }
    Flush(done_flush);
  }
  // Memory peaks around decoding: measured after decodes and when a set closes.
  if (!outcome.finished.empty() || outcome.closed) ReportMemory(worker, pipeline);
  finish_running();
  ReportIteration(worker, iteration, set_size, decode_status, timings, stepped,
                  Millis(clock_->Now() - started_at), outcome.closed);
}

void EngineCore::RecordDenoiseRateLocked(const std::string& model, int width, int height,
                                         int images, double denoise_ms) {
  const double work = MegapixelSteps(width, height, /*steps=*/1, images);
  if (work <= 0 || denoise_ms <= 0) return;
  double& fastest = model_states_[model_index_.at(model)].fastest_ms_per_megapixel_step;
  const double rate = denoise_ms / work;
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
