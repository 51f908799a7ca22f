// engine_bench: the serving engine under concurrent mixed-steps load, with batching on versus
// max_batch_size 1 in the same run, plus the engine alone over a zero-cost pipeline.
//
//   engine_bench [--base_model_path DIR] [--lora_path DIR] [--max_sequence_length N]
//                [--width W] [--height H] [--guidance G] [--steps 2,4,8] [--clients 8]
//                [--requests 6] [--devices cpu,cpu] [--threads 1] [--max_batch_size 4]
//                [--queue_delay_ms 20]
//
// Defaults: the tiny SDXL test model (tests/data/sdxl-tiny with its LoRA) at 64x64. Each of
// --clients threads submits --requests one-image requests one after the other (closed loop),
// each with a prompt of its own, a fixed seed and steps drawn from --steps by a seeded generator
// (the same sequence in every phase). Phases, each on a fresh Engine over the same workers:
//   batched     max_batch_size / queue_delay_ms as given
//   unbatched   max_batch_size 1, no queue delay
//   zero_cost   the batched options over a pipeline that returns at once (what the engine itself
//               costs: queueing, events, PNG encoding of the images on the encoder pool)
// Prints one JSON line per phase and a summary line with the batched / unbatched throughput
// ratio, then a human summary. Latency is the client's view: Submit to OnDone. The engine's own
// overhead per request is total_ms - queue_ms - (text_encode + denoise + decode)_ms of its
// RequestMetrics: event delivery, bookkeeping, image encoding (on the encoder pool, beside the
// worker) and whatever the pipeline does outside its three timed stages
// (noise, tensor-to-image conversion).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/engine.h"
#include "pipelines/pipeline_factory.h"
#include "stats.h"
#include "zero_cost_pipeline.h"

namespace tlcm {
namespace {

struct BenchOptions {
  std::string base_model_path = TLCM_BENCH_DEFAULT_MODEL "/model";
  std::string lora_path = TLCM_BENCH_DEFAULT_MODEL "/lora";
  int max_sequence_length = 512;
  int width = 64;
  int height = 64;
  float guidance = -1;  // < 0: the model's default
  std::vector<int> steps = {2, 4, 8};
  int clients = 8;
  int requests = 6;  // per client
  std::vector<std::string> devices = {"cpu", "cpu"};
  int threads = 1;  // LibTorch intra-op threads (shared by all workers)
  int max_batch_size = 4;
  int queue_delay_ms = 20;
};

bool ParseFlags(int argc, char** argv, BenchOptions* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::cerr << flag << ": needs a value\n";
      return false;
    }
    const std::string value = argv[++i];
    bool ok = true;
    if (flag == "--base_model_path") {
      o->base_model_path = value;
    } else if (flag == "--lora_path") {
      o->lora_path = value;
    } else if (flag == "--max_sequence_length") {
      ok = absl::SimpleAtoi(value, &o->max_sequence_length);
    } else if (flag == "--width") {
      ok = absl::SimpleAtoi(value, &o->width);
    } else if (flag == "--height") {
      ok = absl::SimpleAtoi(value, &o->height);
    } else if (flag == "--guidance") {
      ok = absl::SimpleAtof(value, &o->guidance);
    } else if (flag == "--steps") {
      o->steps.clear();
      for (absl::string_view s : absl::StrSplit(value, ',')) {
        int steps = 0;
        ok = ok && absl::SimpleAtoi(s, &steps);
        o->steps.push_back(steps);
      }
    } else if (flag == "--clients") {
      ok = absl::SimpleAtoi(value, &o->clients);
    } else if (flag == "--requests") {
      ok = absl::SimpleAtoi(value, &o->requests);
    } else if (flag == "--devices") {
      o->devices = absl::StrSplit(value, ',');
    } else if (flag == "--threads") {
      ok = absl::SimpleAtoi(value, &o->threads);
    } else if (flag == "--max_batch_size") {
      ok = absl::SimpleAtoi(value, &o->max_batch_size);
    } else if (flag == "--queue_delay_ms") {
      ok = absl::SimpleAtoi(value, &o->queue_delay_ms);
    } else {
      std::cerr << "unknown flag " << flag << " (see the header of bench/engine_bench.cc)\n";
      return false;
    }
    if (!ok) {
      std::cerr << flag << ": cannot parse \"" << value << "\"\n";
      return false;
    }
  }
  return true;
}

// Waits for one request's end and keeps its metrics.
class WaitingSink : public engine::GenerationEventSink {
 public:
  void OnDone(const absl::Status& status, const engine::RequestMetrics& metrics) override {
    status_ = status;
    metrics_ = metrics;
    done_.Notify();
  }
  void Wait() { done_.WaitForNotification(); }
  const absl::Status& status() const { return status_; }  // after Wait
  const engine::RequestMetrics& metrics() const { return metrics_; }

 private:
  absl::Notification done_;
  absl::Status status_;
  engine::RequestMetrics metrics_;
};

// Counts non-warm-up batch runs and their images.
class BatchCounter : public engine::EngineObserver {
 public:
  void OnBatchDone(const engine::BatchReport& report, bool warmup) override {
    if (warmup) return;
    absl::MutexLock lock(&mu_);
    ++batches_;
    images_ += report.batch_size;
  }
  double mean_batch_size() const {
    absl::MutexLock lock(&mu_);
    return batches_ == 0 ? 0 : static_cast<double>(images_) / batches_;
  }
  int batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

 private:
  mutable absl::Mutex mu_;
  int batches_ ABSL_GUARDED_BY(mu_) = 0;
  int images_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Sample {
  double latency_ms = 0;   // Submit -> OnDone, client's clock
  double overhead_ms = 0;  // total - queue - pipeline stages
  double pipeline_ms = 0;  // text encode + denoise + decode of its batch
  double queue_ms = 0;
};

using bench::Mean;
using bench::Percentile;

struct PhaseResult {
  std::string name;
  int max_batch_size = 0;
  int queue_delay_ms = 0;
  int requests = 0;
  int failed = 0;
  double wall_s = 0;
  double images_per_s = 0;
  double mean_batch_size = 0;
  int batches = 0;
  std::vector<Sample> samples;
};

PhaseResult RunPhase(const std::string& name, const BenchOptions& o, int max_batch_size,
                     int queue_delay_ms, const engine::PipelineFactory& factory) {
  BatchCounter counter;
  engine::EngineOptions options;
  options.devices = o.devices;
  options.observer = &counter;
  engine::ModelOptions model;
  model.spec.name = "bench";
  model.spec.base_model_path = o.base_model_path;
  model.spec.lora_path = o.lora_path;
  model.spec.max_sequence_length = o.max_sequence_length;
  model.spec.min_steps = *std::min_element(o.steps.begin(), o.steps.end());
  model.spec.max_steps = *std::max_element(o.steps.begin(), o.steps.end());
  model.spec.default_steps = model.spec.min_steps;
  model.spec.default_width = o.width;
  model.spec.default_height = o.height;
  model.batching.max_batch_size = max_batch_size;
  model.batching.max_queue_delay_micros = int64_t{queue_delay_ms} * 1000;
  model.batching.max_queue_size = o.clients * 2;
  options.models.push_back(model);
  auto engine = engine::Engine::Create(options, factory);
  PhaseResult result;
  result.name = name;
  result.max_batch_size = max_batch_size;
  result.queue_delay_ms = queue_delay_ms;
  if (!engine.ok() || !(*engine)->WaitUntilReady().ok()) {
    std::cerr << name << ": the engine did not start: "
              << (engine.ok() ? (*engine)->WaitUntilReady() : engine.status()) << "\n";
    result.failed = 1;
    return result;
  }

  absl::Mutex mu;
  std::vector<std::thread> clients;
  const auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < o.clients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 steps_rng(1234 + c);  // the same steps sequence in every phase
      for (int r = 0; r < o.requests; ++r) {
        engine::GenerationRequest request;
        request.model = "bench";
        request.prompt = absl::StrCat("client ", c, ": a lighthouse on a cliff, picture ", r);
        request.seed = static_cast<uint64_t>(c * 1000 + r);
        request.steps = o.steps[steps_rng() % o.steps.size()];
        if (o.guidance >= 0) request.guidance_scale = o.guidance;
        auto sink = std::make_shared<WaitingSink>();
        const auto submitted = std::chrono::steady_clock::now();
        auto handle = (*engine)->Submit(request, sink);
        if (!handle.ok()) {
          absl::MutexLock lock(&mu);
          ++result.failed;
          std::cerr << name << ": " << handle.status() << "\n";
          continue;
        }
        sink->Wait();
        const double latency =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - submitted)
                .count();
        absl::MutexLock lock(&mu);
        if (!sink->status().ok()) {
          ++result.failed;
          std::cerr << name << ": " << sink->status() << "\n";
          continue;
        }
        const engine::RequestMetrics& m = sink->metrics();
        Sample sample;
        sample.latency_ms = latency;
        sample.queue_ms = m.queue_ms;
        sample.pipeline_ms = m.text_encode_ms + m.denoise_ms + m.decode_ms;
        sample.overhead_ms = m.total_ms - m.queue_ms - sample.pipeline_ms;
        result.samples.push_back(sample);
      }
    });
  }
  for (auto& client : clients) client.join();
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.requests = o.clients * o.requests;
  result.images_per_s = result.samples.size() / result.wall_s;
  result.mean_batch_size = counter.mean_batch_size();
  result.batches = counter.batches();
  return result;
}

std::string Json(const PhaseResult& r) {
  std::vector<double> latency, overhead, pipeline, queue;
  for (const Sample& s : r.samples) {
    latency.push_back(s.latency_ms);
    overhead.push_back(s.overhead_ms);
    pipeline.push_back(s.pipeline_ms);
    queue.push_back(s.queue_ms);
  }
  return absl::StrFormat(
      "{\"phase\":\"%s\",\"max_batch_size\":%d,\"queue_delay_ms\":%d,\"requests\":%d,"
      "\"failed\":%d,\"wall_s\":%.3f,\"images_per_s\":%.3f,\"batches\":%d,"
      "\"mean_batch_size\":%.2f,\"latency_ms\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f},"
      "\"queue_ms_mean\":%.2f,\"pipeline_ms_mean\":%.2f,"
      "\"engine_overhead_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"mean\":%.3f}}",
      r.name, r.max_batch_size, r.queue_delay_ms, r.requests, r.failed, r.wall_s, r.images_per_s,
      r.batches, r.mean_batch_size, Percentile(latency, 50), Percentile(latency, 90),
      Percentile(latency, 99), Mean(queue), Mean(pipeline), Percentile(overhead, 50),
      Percentile(overhead, 99), Mean(overhead));
}

}  // namespace
}  // namespace tlcm

int main(int argc, char** argv) {
  tlcm::BenchOptions o;
  if (!tlcm::ParseFlags(argc, argv, &o)) return 2;
  if (o.steps.empty() || o.clients < 1 || o.requests < 1 || o.max_batch_size < 1) {
    std::cerr << "--steps, --clients, --requests and --max_batch_size must be non-empty / >= 1\n";
    return 2;
  }
  tlcm::SetComputeThreads(o.threads);

  std::vector<tlcm::PhaseResult> results;
  results.push_back(
      tlcm::RunPhase("batched", o, o.max_batch_size, o.queue_delay_ms, tlcm::CreatePipeline));
  results.push_back(tlcm::RunPhase("unbatched", o, 1, 0, tlcm::CreatePipeline));
  // The zero-cost pipeline takes the limits of the bench's model spec.
  results.push_back(tlcm::RunPhase("zero_cost", o, o.max_batch_size, o.queue_delay_ms,
                                   tlcm::bench::ZeroCostFactory()));

  for (const auto& r : results) std::cout << tlcm::Json(r) << "\n";
  const double ratio =
      results[1].images_per_s > 0 ? results[0].images_per_s / results[1].images_per_s : 0;
  std::cout << absl::StrFormat(
      "{\"summary\":{\"model\":\"%s\",\"size\":\"%dx%d\",\"steps\":\"%s\",\"clients\":%d,"
      "\"devices\":\"%s\",\"threads\":%d,\"throughput_ratio_batched_over_unbatched\":%.3f}}\n",
      o.base_model_path, o.width, o.height, absl::StrJoin(o.steps, ","), o.clients,
      absl::StrJoin(o.devices, ","), o.threads, ratio);

  std::cout << "\n";
  for (const auto& r : results) {
    std::vector<double> latency, overhead, pipeline;
    for (const auto& s : r.samples) {
      latency.push_back(s.latency_ms);
      overhead.push_back(s.overhead_ms);
      pipeline.push_back(s.pipeline_ms);
    }
    std::cout << absl::StrFormat(
        "%-10s batch<=%d delay %2d ms: %7.2f images/s, mean batch %.2f, latency p50 %8.1f ms "
        "p90 %8.1f ms p99 %8.1f ms; pipeline %8.1f ms/request, engine overhead p50 %.3f ms%s\n",
        r.name, r.max_batch_size, r.queue_delay_ms, r.images_per_s, r.mean_batch_size,
        tlcm::bench::Percentile(latency, 50), tlcm::bench::Percentile(latency, 90),
        tlcm::bench::Percentile(latency, 99), tlcm::bench::Mean(pipeline),
        tlcm::bench::Percentile(overhead, 50),
        r.failed > 0 ? absl::StrCat(" (", r.failed, " FAILED)") : "");
  }
  std::cout << absl::StrFormat("batched / unbatched throughput: %.2fx\n", ratio);
  int failed = 0;
  for (const auto& r : results) failed += r.failed;
  return failed == 0 ? 0 : 1;
}
