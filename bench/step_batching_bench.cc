// step_batching_bench: request-level against step-level batching under the load TLCM makes
// normal: a mix of 2-, 4- and 8-step requests arriving at random (Poisson) at about 80% of what
// the device can do, on the tiny SDXL test model and on a zero-cost pipeline.
//
//   step_batching_bench [--base_model_path DIR] [--lora_path DIR] [--dtype auto]
//                       [--device cpu] [--width W] [--height H] [--steps 2,4,8]
//                       [--requests 120] [--load 0.8] [--max_batch_size 4]
//                       [--queue_delay_ms 10] [--threads 2] [--seed 7] [--rounds 1]
//                       [--pipelines model,zero_cost]
//
// 1. Capacity: every request of the mix submitted at once to request-level batching (full
//    batches, nothing waits for arrivals): images/s at saturation.
// 2. The arrival schedule: --requests requests, exponential gaps at --load x capacity, steps
//    drawn uniformly from --steps; the same schedule (seeded) for every phase.
// 3. Phases, each on a fresh Engine with one worker on --device: request
//    (BatchingMode::kRequest with --queue_delay_ms) and step (BatchingMode::kStep), on each of
//    --pipelines (the model, the zero-cost pipeline) with the same schedule; --rounds times,
//    the two modes alternating within each round (request first in odd rounds, step first in
//    even ones), so that a change in the machine's load shows as spread between rounds rather
//    than as a difference between the modes.
// Per phase one JSON line: images/s (images over first arrival -> last completion), latency
// p50 / p99 per step count (arrival -> OnDone) with the p50 of its wait before its first step
// (queue_p50: the request's queue_ms), the mean running-set size (images per denoiser call), the
// joiners' prompt encoding per denoiser call, and the engine overhead per step: the worker's
// busy time minus the pipeline's timed stages, per denoiser call (on the zero-cost pipeline the
// stages cost nothing, so it is all engine: scheduling, events, bookkeeping; image encoding
// runs on the encoder pool, beside).
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "pipelines/pipeline_factory.h"
#include "stats.h"
#include "zero_cost_pipeline.h"

ABSL_FLAG(std::string, base_model_path, TLCM_BENCH_DEFAULT_MODEL "/model",
          "diffusers folder of the SDXL model");
ABSL_FLAG(std::string, lora_path, TLCM_BENCH_DEFAULT_MODEL "/lora", "its TLCM LoRA folder");
ABSL_FLAG(std::string, dtype, "auto", "model dtype (auto, float32, float16, bfloat16)");
ABSL_FLAG(std::string, device, "cpu", "the one device the engine runs on");
ABSL_FLAG(int, width, 64, "image width, pixels");
ABSL_FLAG(int, height, 64, "image height, pixels");
ABSL_FLAG(std::vector<std::string>, steps, std::vector<std::string>({"2", "4", "8"}),
          "step counts of the mix, drawn uniformly");
ABSL_FLAG(int, requests, 120, "requests per phase");
ABSL_FLAG(double, load, 0.8, "arrival rate as a share of the measured capacity");
ABSL_FLAG(int, max_batch_size, 4, "images per batch / running set");
ABSL_FLAG(int, queue_delay_ms, 10, "request-level batching's max queue delay");
ABSL_FLAG(int, threads, 2, "torch compute threads");
ABSL_FLAG(uint32_t, seed, 7, "seed of the arrival schedule");
ABSL_FLAG(int, rounds, 1, "rounds of phases (request and step alternate within each)");
ABSL_FLAG(std::vector<std::string>, pipelines, std::vector<std::string>({"model", "zero_cost"}),
          "pipelines the phases run on: model, zero_cost");

namespace tlcm {
namespace {

using Clock = std::chrono::steady_clock;

// The flags, read once.
struct BenchOptions {
  std::string base_model_path = absl::GetFlag(FLAGS_base_model_path);
  std::string lora_path = absl::GetFlag(FLAGS_lora_path);
  std::string dtype = absl::GetFlag(FLAGS_dtype);
  std::string device = absl::GetFlag(FLAGS_device);
  int width = absl::GetFlag(FLAGS_width);
  int height = absl::GetFlag(FLAGS_height);
  std::vector<int> steps;
  int requests = absl::GetFlag(FLAGS_requests);
  double load = absl::GetFlag(FLAGS_load);
  int max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  int queue_delay_ms = absl::GetFlag(FLAGS_queue_delay_ms);
  int threads = absl::GetFlag(FLAGS_threads);
  uint32_t seed = absl::GetFlag(FLAGS_seed);
  int rounds = absl::GetFlag(FLAGS_rounds);
  std::vector<std::string> pipelines = absl::GetFlag(FLAGS_pipelines);
};

// Reads the flags; false (after saying why) when --steps holds something other than integers.
bool ReadFlags(BenchOptions* o) {
  for (const std::string& s : absl::GetFlag(FLAGS_steps)) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n)) {
      std::cerr << "--steps: bad value " << s << "\n";
      return false;
    }
    o->steps.push_back(n);
  }
  for (const std::string& p : o->pipelines) {
    if (p != "model" && p != "zero_cost") {
      std::cerr << "--pipelines: " << p << " is not model or zero_cost\n";
      return false;
    }
  }
  return true;
}

// One request of the schedule: when it arrives (after the phase's start) and its step count.
struct Arrival {
  double at_ms = 0;
  int steps = 0;
};

// Records the end of one request.
class TimedSink : public engine::GenerationEventSink {
 public:
  explicit TimedSink(Clock::time_point submitted) : submitted_(submitted) {}
  void OnDone(const absl::Status& status, const engine::RequestMetrics& metrics) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    queue_ms_ = metrics.queue_ms;
    latency_ms_ = std::chrono::duration<double, std::milli>(Clock::now() - submitted_).count();
    done_at_ = Clock::now();
    done_ = true;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }
  absl::Status status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  double latency_ms() const {
    absl::MutexLock lock(&mu_);
    return latency_ms_;
  }
  double queue_ms() const {
    absl::MutexLock lock(&mu_);
    return queue_ms_;
  }
  Clock::time_point done_at() const {
    absl::MutexLock lock(&mu_);
    return done_at_;
  }

 private:
  const Clock::time_point submitted_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  double latency_ms_ ABSL_GUARDED_BY(mu_) = 0;
  double queue_ms_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point done_at_ ABSL_GUARDED_BY(mu_);
};

// Denoiser calls, their images and the worker's time outside the pipeline's timed stages.
class CallCounter : public engine::EngineObserver {
 public:
  void OnBatchDone(const engine::BatchReport& report, bool warmup) override {
    if (warmup || !report.status.ok()) return;
    absl::MutexLock lock(&mu_);
    calls_ += report.steps;
    images_ += static_cast<int64_t>(report.batch_size) * report.steps;
    const engine::StageTimings& t = report.timings;
    overhead_ms_ += report.worker_ms - t.text_encode_ms - t.denoise_ms - t.decode_ms;
    text_encode_ms_ += t.text_encode_ms;
  }
  double mean_set_size() const {
    absl::MutexLock lock(&mu_);
    return calls_ == 0 ? 0 : static_cast<double>(images_) / calls_;
  }
  double overhead_ms_per_step() const {
    absl::MutexLock lock(&mu_);
    return calls_ == 0 ? 0 : overhead_ms_ / calls_;
  }
  double text_encode_ms_per_step() const {
    absl::MutexLock lock(&mu_);
    return calls_ == 0 ? 0 : text_encode_ms_ / calls_;
  }
  int64_t calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable absl::Mutex mu_;
  int64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t images_ ABSL_GUARDED_BY(mu_) = 0;
  double overhead_ms_ ABSL_GUARDED_BY(mu_) = 0;
  double text_encode_ms_ ABSL_GUARDED_BY(mu_) = 0;
};

struct PhaseResult {
  std::string pipeline;
  std::string mode;
  int completed = 0;
  int failed = 0;
  double images_per_s = 0;
  double mean_set_size = 0;
  double overhead_ms_per_step = 0;
  double text_encode_ms_per_step = 0;
  int64_t denoiser_calls = 0;
  std::map<int, std::vector<double>> latency_ms;  // per step count
  std::map<int, std::vector<double>> queue_ms;    // per step count
};

std::unique_ptr<engine::Engine> MakeEngine(const BenchOptions& o, engine::BatchingMode mode,
                                           const engine::PipelineFactory& factory,
                                           engine::EngineObserver* observer) {
  engine::EngineOptions options;
  options.devices = {o.device};
  options.observer = observer;
  engine::ModelOptions model;
  model.spec.name = "bench";
  model.spec.base_model_path = o.base_model_path;
  model.spec.lora_path = o.lora_path;
  model.spec.dtype = o.dtype;
  model.spec.min_steps = *std::min_element(o.steps.begin(), o.steps.end());
  model.spec.max_steps = *std::max_element(o.steps.begin(), o.steps.end());
  model.spec.default_steps = model.spec.min_steps;
  model.spec.default_width = o.width;
  model.spec.default_height = o.height;
  model.batching.mode = mode;
  model.batching.max_batch_size = o.max_batch_size;
  model.batching.max_queue_delay_micros = int64_t{o.queue_delay_ms} * 1000;
  model.batching.max_queue_size = o.requests + 1;
  options.models.push_back(model);
  auto engine = engine::Engine::Create(options, factory);
  if (!engine.ok()) {
    std::cerr << "the engine did not start: " << engine.status() << "\n";
    return nullptr;
  }
  if (absl::Status ready = (*engine)->WaitUntilReady(); !ready.ok()) {
    std::cerr << "the engine did not get ready: " << ready << "\n";
    return nullptr;
  }
  return *std::move(engine);
}

engine::GenerationRequest RequestFor(int index, int steps) {
  engine::GenerationRequest request;
  request.model = "bench";
  request.prompt = absl::StrCat("a lighthouse on a cliff at dusk, picture ", index % 16);
  request.seed = static_cast<uint64_t>(index);
  request.steps = steps;
  return request;
}

// Submits `arrivals` at their times (or all at once with `at_once`) and waits for every end.
PhaseResult RunPhase(const BenchOptions& o, const std::string& pipeline, engine::BatchingMode mode,
                     const engine::PipelineFactory& factory, const std::vector<Arrival>& arrivals,
                     bool at_once = false) {
  PhaseResult result;
  result.pipeline = pipeline;
  result.mode = std::string(engine::BatchingModeName(mode));
  CallCounter counter;
  std::unique_ptr<engine::Engine> engine = MakeEngine(o, mode, factory, &counter);
  if (engine == nullptr) {
    result.failed = static_cast<int>(arrivals.size());
    return result;
  }
  std::vector<std::pair<int, std::shared_ptr<TimedSink>>> sinks;
  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < arrivals.size(); ++i) {
    if (!at_once) {
      std::this_thread::sleep_until(
          start + std::chrono::microseconds(static_cast<int64_t>(arrivals[i].at_ms * 1000)));
    }
    auto sink = std::make_shared<TimedSink>(Clock::now());
    auto handle = engine->Submit(RequestFor(static_cast<int>(i), arrivals[i].steps), sink);
    if (!handle.ok()) {
      std::cerr << result.mode << ": " << handle.status() << "\n";
      ++result.failed;
      continue;
    }
    sinks.emplace_back(arrivals[i].steps, std::move(sink));
  }
  Clock::time_point last = start;
  for (auto& [steps, sink] : sinks) {
    sink->Wait();
    if (!sink->status().ok()) {
      std::cerr << result.mode << ": " << sink->status() << "\n";
      ++result.failed;
      continue;
    }
    ++result.completed;
    result.latency_ms[steps].push_back(sink->latency_ms());
    result.queue_ms[steps].push_back(sink->queue_ms());
    last = std::max(last, sink->done_at());
  }
  const double wall_s = std::chrono::duration<double>(last - start).count();
  result.images_per_s = wall_s > 0 ? result.completed / wall_s : 0;
  engine.reset();  // drains; the observer has every report
  result.mean_set_size = counter.mean_set_size();
  result.overhead_ms_per_step = counter.overhead_ms_per_step();
  result.text_encode_ms_per_step = counter.text_encode_ms_per_step();
  result.denoiser_calls = counter.calls();
  return result;
}

std::string Json(const PhaseResult& r, const BenchOptions& o, int round, double arrivals_per_s) {
  std::vector<std::string> per_steps;
  for (const auto& [steps, latency] : r.latency_ms) {
    per_steps.push_back(absl::StrFormat(
        "\"%d\":{\"n\":%d,\"p50\":%.2f,\"p99\":%.2f,\"queue_p50\":%.2f}", steps, latency.size(),
        bench::Percentile(latency, 50), bench::Percentile(latency, 99),
        bench::Percentile(r.queue_ms.at(steps), 50)));
  }
  return absl::StrFormat(
      "{\"round\":%d,\"pipeline\":\"%s\",\"mode\":\"%s\",\"device\":\"%s\",\"size\":\"%dx%d\","
      "\"max_batch_"
      "size\":%d,"
      "\"queue_delay_ms\":%d,\"arrivals_per_s\":%.3f,\"completed\":%d,\"failed\":%d,"
      "\"images_per_s\":%.3f,\"denoiser_calls\":%d,\"mean_set_size\":%.3f,"
      "\"text_encode_ms_per_step\":%.3f,\"engine_overhead_ms_per_step\":%.4f,"
      "\"latency_ms\":{%s}}",
      round, r.pipeline, r.mode, o.device, o.width, o.height, o.max_batch_size, o.queue_delay_ms,
      arrivals_per_s, r.completed, r.failed, r.images_per_s, r.denoiser_calls, r.mean_set_size,
      r.text_encode_ms_per_step, r.overhead_ms_per_step, absl::StrJoin(per_steps, ","));
}

}  // namespace
}  // namespace tlcm

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  tlcm::BenchOptions o;
  if (!tlcm::ReadFlags(&o)) return 2;
  if (o.steps.empty() || o.requests < 1 || o.max_batch_size < 1 || !(o.load > 0) || o.rounds < 1) {
    std::cerr << "--steps, --requests, --max_batch_size, --load and --rounds must be non-empty / "
                 "positive\n";
    return 2;
  }
  tlcm::SetComputeThreads(o.threads);
  std::mt19937 rng(o.seed);
  std::vector<tlcm::Arrival> schedule(o.requests);
  for (auto& a : schedule) a.steps = o.steps[rng() % o.steps.size()];

  // 1. Capacity at saturation.
  const tlcm::PhaseResult saturated = tlcm::RunPhase(
      o, "model", tlcm::engine::BatchingMode::kRequest, tlcm::CreatePipeline, schedule, true);
  const double capacity = saturated.images_per_s;
  std::cout << absl::StrFormat("{\"capacity_images_per_s\":%.3f,\"steps\":\"%s\"}\n", capacity,
                               absl::StrJoin(o.steps, ","));
  if (capacity <= 0) return 1;

  // 2. Poisson arrivals at load x capacity.
  const double rate = o.load * capacity;
  std::exponential_distribution<double> gap(rate / 1000.0);  // per ms
  double t = 0;
  for (auto& a : schedule) {
    a.at_ms = t;
    t += gap(rng);
  }

  // 3. The phases, the modes alternating within each round.
  int failed = saturated.failed;
  for (int round = 1; round <= o.rounds; ++round) {
    for (const std::string& pipeline : o.pipelines) {
      const tlcm::engine::PipelineFactory factory =
          pipeline == "model" ? tlcm::engine::PipelineFactory(tlcm::CreatePipeline)
                              : tlcm::bench::ZeroCostFactory();
      std::vector<tlcm::engine::BatchingMode> modes = {tlcm::engine::BatchingMode::kRequest,
                                                       tlcm::engine::BatchingMode::kStep};
      if (round % 2 == 0) std::reverse(modes.begin(), modes.end());  // neither always goes first
      for (tlcm::engine::BatchingMode mode : modes) {
        const tlcm::PhaseResult r = tlcm::RunPhase(o, pipeline, mode, factory, schedule);
        failed += r.failed;
        std::cout << tlcm::Json(r, o, round, rate) << std::endl;
      }
    }
  }
  return failed == 0 ? 0 : 1;
}
