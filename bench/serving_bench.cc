// serving_bench: what the gRPC layer costs, and what batching gains through it.
//
// One process, one model (real pipelines via tlcm::CreatePipeline, tiny SDXL test model by
// default), one closed-loop load: --concurrency clients each send their next Generate as soon as
// the previous one ends, --requests in all, steps cycling through --steps_mix. Three targets are
// loaded once, and the same load runs against each in turn, --rounds times (interleaved, so that
// a noisy machine disturbs all three alike):
//   in_process   Engine::Submit, the engine called directly (images still encoded to PNG)
//   grpc         an identical engine behind tlcm::server::Server on loopback, tlcm::client::Client
//   grpc_batch1  the same, with max_batch_size 1 (no batching)
// Prints one JSON line per run (wall time, images/s, latency p50/p90/p99; the in_process runs
// add how long each batch kept the device's worker busy and how long encoding took per image)
// and the medians of the per-round ratios grpc/in_process (serving overhead) and
// grpc_batch1/grpc (batching gain). Nothing is asserted.
//
// --pipeline zero_cost replaces the model by a pipeline that returns --size x --size synthetic
// pictures at once (bench/zero_cost_pipeline.h): what the engine, the encoders and gRPC cost
// alone, with no GPU.
//
//   serving_bench [--pipeline real|zero_cost] [--model_path DIR] [--lora_path DIR]
//                 [--requests N] [--concurrency C] [--steps_mix 2,4,8] [--size PIXELS]
//                 [--format png|jpeg|webp] [--max_batch_size B] [--rounds R] [--threads T]
//                 [--encoder_threads E]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "client/tlcm_client.h"
#include "engine/engine.h"
#include "pipelines/pipeline_factory.h"
#include "server/server.h"
#include "server/server_config.h"
#include "stats.h"
#include "util/status_macros.h"
#include "zero_cost_pipeline.h"

ABSL_FLAG(std::string, model_path, TLCM_SOURCE_DIR "/tests/data/sdxl-tiny/model",
          "diffusers folder of the model to serve");
ABSL_FLAG(std::string, lora_path, TLCM_SOURCE_DIR "/tests/data/sdxl-tiny/lora",
          "PEFT LoRA folder fused into it (empty = none)");
ABSL_FLAG(int, requests, 48, "Generate calls per run");
ABSL_FLAG(int, concurrency, 8, "clients sending at once (closed loop)");
ABSL_FLAG(std::string, steps_mix, "2,4,8", "steps of request i: entry i mod the list's length");
ABSL_FLAG(int, size, 64, "image width and height in pixels");
ABSL_FLAG(int, max_batch_size, 4, "images per batch in the in_process and grpc runs");
ABSL_FLAG(int, rounds, 3, "times the three runs are repeated, interleaved (ratios: medians)");
ABSL_FLAG(int, threads, 0, "LibTorch intra-op threads; 0 = the number of cores");
ABSL_FLAG(std::string, pipeline, "real", "real (--model_path) or zero_cost (no model)");
ABSL_FLAG(std::string, format, "png", "image format of the responses: png, jpeg or webp");
ABSL_FLAG(int, encoder_threads, 0, "image encoding threads; 0 = the engine's default");

namespace {

using Clock = std::chrono::steady_clock;

struct LoadResult {
  double wall_ms = 0;
  std::vector<double> latencies_ms;  // of the calls that succeeded
  int failures = 0;
};

// Runs calls 0..requests-1 from `concurrency` threads, each taking the next index when its
// previous call returns. `call(i)` returns whether call i succeeded.
LoadResult RunLoad(int requests, int concurrency, const std::function<bool(int)>& call) {
  LoadResult result;
  std::atomic<int> next{0};
  std::mutex mu;
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < concurrency; ++c) {
    clients.emplace_back([&] {
      for (int i = next++; i < requests; i = next++) {
        const auto begin = Clock::now();
        const bool ok = call(i);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
        std::lock_guard<std::mutex> lock(mu);
        if (ok) {
          result.latencies_ms.push_back(ms);
        } else {
          ++result.failures;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  result.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return result;
}

using tlcm::bench::Median;
using tlcm::bench::Percentile;

// The in-process engine's batches: how long each kept its worker busy, and the encoding time of
// each image (on the encoder pool).
class WorkerTimes : public tlcm::engine::EngineObserver {
 public:
  void OnBatchDone(const tlcm::engine::BatchReport& report, bool warmup) override {
    if (warmup) return;
    std::lock_guard<std::mutex> lock(mu_);
    worker_ms_.push_back(report.worker_ms);
    images_ += report.batch_size;
  }
  void OnImageDelivered(const std::string&, double encode_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    encode_ms_.push_back(encode_ms);
  }
  // The JSON fields of what was seen since the last call, which forgets it.
  std::string TakeJsonFields() {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string fields = absl::StrFormat(
        ",\"batches\":%zu,\"mean_batch\":%.2f,\"worker_ms_per_batch\":%.2f,"
        "\"encode_ms_per_image\":%.2f",
        worker_ms_.size(), worker_ms_.empty() ? 0.0 : static_cast<double>(images_) / worker_ms_.size(),
        tlcm::bench::Mean(worker_ms_), tlcm::bench::Mean(encode_ms_));
    worker_ms_.clear();
    encode_ms_.clear();
    images_ = 0;
    return fields;
  }

 private:
  std::mutex mu_;
  std::vector<double> worker_ms_, encode_ms_;
  int images_ = 0;
};

void Print(const std::string& run, int round, const LoadResult& r,
           const std::string& extra_fields = "") {
  const double images = static_cast<double>(r.latencies_ms.size());
  std::printf(
      "{\"run\":\"%s\",\"round\":%d,\"requests\":%zu,\"failures\":%d,\"wall_ms\":%.1f,"
      "\"images_per_s\":%.3f,\"p50_ms\":%.1f,\"p90_ms\":%.1f,\"p99_ms\":%.1f%s}\n",
      run.c_str(), round, r.latencies_ms.size(), r.failures, r.wall_ms,
      images * 1000.0 / r.wall_ms, Percentile(r.latencies_ms, 50),
      Percentile(r.latencies_ms, 90), Percentile(r.latencies_ms, 99), extra_fields.c_str());
  std::fflush(stdout);
}

// Waits for a request's terminal event.
class WaitingSink : public tlcm::engine::GenerationEventSink {
 public:
  void OnDone(const absl::Status& status, const tlcm::engine::RequestMetrics&) override {
    ok_ = status.ok();
    done_.Notify();
  }
  bool Wait() {
    done_.WaitForNotification();
    return ok_;
  }

 private:
  absl::Notification done_;
  bool ok_ = false;
};

tlcm::v1::ServerConfig Config(int max_batch_size, int max_queue_size) {
  tlcm::v1::ServerConfig config;
  config.set_listen_address("127.0.0.1");
  config.set_port(0);
  config.set_metrics_port(-1);
  config.add_devices("cpu");
  config.set_compute_threads(absl::GetFlag(FLAGS_threads));
  config.set_encoder_threads(absl::GetFlag(FLAGS_encoder_threads));
  tlcm::v1::ModelConfig* model = config.add_models();
  model->set_name("bench");
  model->set_base_model_path(absl::GetFlag(FLAGS_model_path));
  model->set_lora_path(absl::GetFlag(FLAGS_lora_path));
  model->set_default_width(absl::GetFlag(FLAGS_size));
  model->set_default_height(absl::GetFlag(FLAGS_size));
  model->set_max_batch_size(max_batch_size);
  model->set_max_queue_size(max_queue_size);
  model->set_prompt_cache_entries(0);  // every request encodes its prompt
  return config;
}

absl::StatusOr<tlcm::v1::ServerConfig> Resolved(int max_batch_size) {
  return tlcm::server::ResolveServerConfig(
      Config(max_batch_size, absl::GetFlag(FLAGS_concurrency) + 1), tlcm::AvailableDevices());
}

tlcm::engine::PipelineFactory Factory() {
  if (absl::GetFlag(FLAGS_pipeline) == "zero_cost") return tlcm::bench::ZeroCostFactory();
  return [](const tlcm::ModelSpec& spec, const std::string& device) {
    return tlcm::CreatePipeline(spec, device);
  };
}

int StepsOf(int i, const std::vector<int>& mix) { return mix[static_cast<size_t>(i) % mix.size()]; }

std::string PromptOf(int i) { return absl::StrFormat("a lighthouse at dusk, study %d", i); }

// The in-process engine and the two servers, loaded once and kept for every round.
struct Targets {
  std::unique_ptr<WorkerTimes> worker_times;  // the in-process engine's observer
  std::unique_ptr<tlcm::engine::Engine> engine;
  std::unique_ptr<tlcm::server::Server> batched, unbatched;
  std::unique_ptr<tlcm::client::Client> batched_client, unbatched_client;
};

absl::StatusOr<std::unique_ptr<tlcm::server::Server>> StartServer(int max_batch_size) {
  TLCM_ASSIGN_OR_RETURN(tlcm::v1::ServerConfig config, Resolved(max_batch_size));
  TLCM_ASSIGN_OR_RETURN(auto server, tlcm::server::Server::Start(config, Factory()));
  TLCM_RETURN_IF_ERROR(server->WaitUntilReady());
  return server;
}

absl::StatusOr<std::unique_ptr<tlcm::client::Client>> ClientOf(const tlcm::server::Server& s) {
  tlcm::client::ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", s.port());
  return tlcm::client::Client::Create(options);
}

absl::StatusOr<Targets> StartTargets() {
  Targets t;
  TLCM_ASSIGN_OR_RETURN(tlcm::v1::ServerConfig config, Resolved(absl::GetFlag(FLAGS_max_batch_size)));
  t.worker_times = std::make_unique<WorkerTimes>();
  tlcm::engine::EngineOptions options = tlcm::server::MakeEngineOptions(config);
  options.observer = t.worker_times.get();
  TLCM_ASSIGN_OR_RETURN(t.engine, tlcm::engine::Engine::Create(std::move(options), Factory()));
  TLCM_RETURN_IF_ERROR(t.engine->WaitUntilReady());
  TLCM_ASSIGN_OR_RETURN(t.batched, StartServer(absl::GetFlag(FLAGS_max_batch_size)));
  TLCM_ASSIGN_OR_RETURN(t.unbatched, StartServer(1));
  TLCM_ASSIGN_OR_RETURN(t.batched_client, ClientOf(*t.batched));
  TLCM_ASSIGN_OR_RETURN(t.unbatched_client, ClientOf(*t.unbatched));
  return t;
}

LoadResult InProcess(tlcm::engine::Engine& engine, const std::vector<int>& mix,
                     tlcm::ImageFormat format) {
  return RunLoad(absl::GetFlag(FLAGS_requests), absl::GetFlag(FLAGS_concurrency), [&](int i) {
    tlcm::engine::GenerationRequest request;
    request.model = "bench";
    request.prompt = PromptOf(i);
    request.steps = StepsOf(i, mix);
    request.seed = static_cast<uint64_t>(i);
    request.format = format;
    auto sink = std::make_shared<WaitingSink>();
    return engine.Submit(std::move(request), sink).ok() && sink->Wait();
  });
}

LoadResult ThroughGrpc(tlcm::client::Client& client, const std::vector<int>& mix,
                       tlcm::v1::ImageFormat format) {
  return RunLoad(absl::GetFlag(FLAGS_requests), absl::GetFlag(FLAGS_concurrency), [&](int i) {
    tlcm::v1::GenerateRequest request;
    request.set_model("bench");
    request.set_prompt(PromptOf(i));
    request.set_steps(StepsOf(i, mix));
    request.set_seed(static_cast<uint64_t>(i));
    request.set_format(format);
    return client.GenerateBlocking(request).status.ok();
  });
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::vector<int> mix;
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_steps_mix), ',')) {
    int steps = 0;
    if (!absl::SimpleAtoi(part, &steps)) {
      std::cerr << "--steps_mix: '" << part << "' is not an integer\n";
      return 2;
    }
    mix.push_back(steps);
  }
  const std::string pipeline = absl::GetFlag(FLAGS_pipeline);
  if (pipeline != "real" && pipeline != "zero_cost") {
    std::cerr << "--pipeline: '" << pipeline << "' is not real or zero_cost\n";
    return 2;
  }
  absl::StatusOr<tlcm::ImageFormat> format = tlcm::ParseImageFormat(absl::GetFlag(FLAGS_format));
  if (!format.ok()) {
    std::cerr << "--format: " << format.status().message() << "\n";
    return 2;
  }
  const tlcm::v1::ImageFormat wire_format =
      *format == tlcm::ImageFormat::kPng    ? tlcm::v1::IMAGE_FORMAT_PNG
      : *format == tlcm::ImageFormat::kJpeg ? tlcm::v1::IMAGE_FORMAT_JPEG
                                            : tlcm::v1::IMAGE_FORMAT_WEBP;
  tlcm::SetComputeThreads(absl::GetFlag(FLAGS_threads));
  absl::StatusOr<Targets> targets = StartTargets();
  if (!targets.ok()) {
    std::cerr << targets.status() << "\n";
    return 1;
  }
  std::vector<double> overhead, gain;
  for (int round = 1; round <= absl::GetFlag(FLAGS_rounds); ++round) {
    targets->worker_times->TakeJsonFields();  // forget the previous round's
    const LoadResult in_process = InProcess(*targets->engine, mix, *format);
    Print("in_process", round, in_process, targets->worker_times->TakeJsonFields());
    const LoadResult grpc = ThroughGrpc(*targets->batched_client, mix, wire_format);
    Print("grpc", round, grpc);
    const LoadResult unbatched = ThroughGrpc(*targets->unbatched_client, mix, wire_format);
    Print("grpc_batch1", round, unbatched);
    overhead.push_back(grpc.wall_ms / in_process.wall_ms);
    gain.push_back(unbatched.wall_ms / grpc.wall_ms);
  }
  std::printf(
      "{\"serving_overhead_median\":%.3f,\"batching_gain_median\":%.3f,\"rounds\":%zu,"
      "\"pipeline\":\"%s\",\"format\":\"%s\",\"requests\":%d,\"concurrency\":%d,"
      "\"size\":%d,\"max_batch_size\":%d,\"encoder_threads\":%d}\n",
      Median(overhead), Median(gain), overhead.size(), pipeline.c_str(),
      std::string(tlcm::ImageFormatName(*format)).c_str(), absl::GetFlag(FLAGS_requests),
      absl::GetFlag(FLAGS_concurrency), absl::GetFlag(FLAGS_size),
      absl::GetFlag(FLAGS_max_batch_size), targets->engine->encoder_threads());
  targets->batched->Drain(absl::Seconds(30));
  targets->unbatched->Drain(absl::Seconds(30));
  return 0;
}
