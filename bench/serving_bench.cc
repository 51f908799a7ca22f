// serving_bench: what the gRPC layer costs, and what batching gains through it.
//
// One process, one model (real pipelines via tlcm::CreatePipeline, tiny SDXL test model by
// default), one closed-loop load: --concurrency clients each send their next Generate as soon as
// the previous one ends, --requests in all, steps cycling through --steps_mix. Three targets are
// loaded once, and the same load runs against each in turn, --rounds times (interleaved, so that
// a noisy machine disturbs all alike):
//   in_process   Engine::Submit, the engine called directly (images still encoded to PNG)
//   grpc         an identical engine behind tlcm::server::Server on loopback, tlcm::client::Client
//   http         the same server through its HTTP port: POST /v1/images/generations (JSON,
//                base64 images), cpp-httplib's client, one keep-alive connection per client
//                thread, each answer parsed and its image decoded from base64
//   grpc_batch1  the grpc run against a server with max_batch_size 1 (no batching)
// Prints one JSON line per run (wall time, images/s, latency p50/p90/p99; the in_process runs
// add how long each batch kept the device's worker busy and how long encoding took per image)
// and the medians of the per-round ratios grpc/in_process (serving overhead), http/grpc (what
// JSON and base64 cost against protobuf) and grpc_batch1/grpc (batching gain). Nothing is
// asserted.
//
// --pipeline zero_cost replaces the model by a pipeline that returns --size x --size synthetic
// pictures at once (bench/zero_cost_pipeline.h): what the engine, the encoders and gRPC cost
// alone, with no GPU.
//
// --concurrency and --format take lists: every (format, concurrency) pair is one load, run in
// that order against the same three targets (loaded once).
//
//   serving_bench [--pipeline real|zero_cost] [--model_path DIR] [--lora_path DIR]
//                 [--requests N] [--concurrency C[,C...]] [--steps_mix 2,4,8] [--size PIXELS]
//                 [--format png|jpeg|webp[,...]] [--max_batch_size B] [--rounds R] [--threads T]
//                 [--encoder_threads E] [--device cpu|cuda:N]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/escaping.h"
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
ABSL_FLAG(int, requests, 48, "Generate calls per run; 0 = twice the concurrency, 16 to 96");
ABSL_FLAG(std::string, concurrency, "8",
          "clients sending at once (closed loop); a comma-separated list runs each in turn");
ABSL_FLAG(std::string, steps_mix, "2,4,8", "steps of request i: entry i mod the list's length");
ABSL_FLAG(int, size, 64, "image width and height in pixels");
ABSL_FLAG(int, max_batch_size, 4, "images per batch in the in_process and grpc runs");
ABSL_FLAG(int, rounds, 3, "times the three runs are repeated, interleaved (ratios: medians)");
ABSL_FLAG(int, threads, 0, "LibTorch intra-op threads; 0 = the number of cores");
ABSL_FLAG(std::string, pipeline, "real", "real (--model_path) or zero_cost (no model)");
ABSL_FLAG(std::string, format, "png",
          "image format of the responses: png, jpeg or webp; a comma-separated list runs each");
ABSL_FLAG(int, encoder_threads, 0, "image encoding threads; 0 = the engine's default");
ABSL_FLAG(std::string, device, "cpu", "where the model runs: cpu or cuda:N");

namespace {

using Clock = std::chrono::steady_clock;

// One load the three targets get in turn.
struct Load {
  int concurrency = 0;
  int requests = 0;
  tlcm::ImageFormat format = tlcm::ImageFormat::kPng;
};

struct LoadResult {
  double wall_ms = 0;
  std::vector<double> latencies_ms;  // of the calls that succeeded
  std::vector<double> batch_sizes;   // the batch each successful call ran in (its largest)
  int failures = 0;
};

// Runs calls 0..requests-1 from `concurrency` threads, each taking the next index when its
// previous call returns. `call(i)` returns the size of the batch call i ran in, or nullopt when
// it failed.
LoadResult RunLoad(int requests, int concurrency,
                   const std::function<std::optional<int>(int)>& call) {
  LoadResult result;
  std::atomic<int> next{0};
  std::mutex mu;
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < concurrency; ++c) {
    clients.emplace_back([&] {
      for (int i = next++; i < requests; i = next++) {
        const auto begin = Clock::now();
        const std::optional<int> batch = call(i);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
        std::lock_guard<std::mutex> lock(mu);
        if (batch.has_value()) {
          result.latencies_ms.push_back(ms);
          result.batch_sizes.push_back(*batch);
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

// The in-process engine's batches: how long each kept its worker busy, the encoding time of each
// image (on the encoder pool), and the most device memory the caching allocator held.
class WorkerTimes : public tlcm::engine::EngineObserver {
 public:
  void OnBatchDone(const tlcm::engine::BatchReport& report, bool warmup) override {
    if (warmup) return;
    std::lock_guard<std::mutex> lock(mu_);
    worker_ms_.push_back(report.worker_ms);
  }
  void OnImageDelivered(const std::string&, double encode_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    encode_ms_.push_back(encode_ms);
  }
  void OnDeviceMemory(const std::string&, int, const tlcm::engine::DeviceMemory& memory) override {
    std::lock_guard<std::mutex> lock(mu_);
    reserved_bytes_ = std::max(reserved_bytes_, memory.reserved_bytes);
  }
  // The JSON fields of what was seen since the last call, which forgets it.
  std::string TakeJsonFields() {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string fields = absl::StrFormat(
        ",\"batches\":%zu,\"worker_ms_per_batch\":%.2f,\"encode_ms_per_image\":%.2f,"
        "\"device_reserved_bytes\":%d",
        worker_ms_.size(), tlcm::bench::Mean(worker_ms_), tlcm::bench::Mean(encode_ms_),
        reserved_bytes_);
    worker_ms_.clear();
    encode_ms_.clear();
    return fields;
  }

 private:
  std::mutex mu_;
  std::vector<double> worker_ms_, encode_ms_;
  int64_t reserved_bytes_ = -1;  // -1 until measured (CPU: never)
};

// One JSON line: the run and its load's settings, then what it measured. `impl` is
// "tlcm-engine" (in-process) or "tlcm-server" (through gRPC).
void Print(const std::string& run, const std::string& impl, int round, int max_batch_size,
           const Load& load, const LoadResult& r, const std::string& extra_fields = "") {
  const double images = static_cast<double>(r.latencies_ms.size());
  std::printf(
      "{\"run\":\"%s\",\"impl\":\"%s\",\"round\":%d,\"pipeline\":\"%s\","
      "\"device\":\"%s\",\"steps\":\"%s\",\"width\":%d,\"height\":%d,\"format\":\"%s\","
      "\"max_batch_size\":%d,\"concurrency\":%d,\"requests\":%zu,\"errors\":%d,"
      "\"wall_ms\":%.1f,\"images_per_s\":%.3f,\"p50_ms\":%.1f,\"p90_ms\":%.1f,"
      "\"p99_ms\":%.1f,\"mean_batch\":%.2f%s}\n",
      run.c_str(), impl.c_str(), round, absl::GetFlag(FLAGS_pipeline).c_str(),
      absl::GetFlag(FLAGS_device).c_str(), absl::GetFlag(FLAGS_steps_mix).c_str(),
      absl::GetFlag(FLAGS_size), absl::GetFlag(FLAGS_size),
      std::string(tlcm::ImageFormatName(load.format)).c_str(), max_batch_size, load.concurrency,
      r.latencies_ms.size(), r.failures, r.wall_ms, images * 1000.0 / r.wall_ms,
      Percentile(r.latencies_ms, 50), Percentile(r.latencies_ms, 90),
      Percentile(r.latencies_ms, 99), tlcm::bench::Mean(r.batch_sizes), extra_fields.c_str());
  std::fflush(stdout);
}

// Waits for a request's terminal event.
class WaitingSink : public tlcm::engine::GenerationEventSink {
 public:
  void OnDone(const absl::Status& status, const tlcm::engine::RequestMetrics& metrics) override {
    if (status.ok()) batch_size_ = metrics.batch_size;
    done_.Notify();
  }
  // The size of the batch the request ran in, or nullopt when it failed.
  std::optional<int> Wait() {
    done_.WaitForNotification();
    return batch_size_;
  }

 private:
  absl::Notification done_;
  std::optional<int> batch_size_;
};

tlcm::v1::ServerConfig Config(int max_batch_size, int max_queue_size) {
  tlcm::v1::ServerConfig config;
  config.set_listen_address("127.0.0.1");
  config.set_port(0);
  config.set_metrics_port(-1);
  config.set_http_port(0);
  config.add_devices(absl::GetFlag(FLAGS_device));
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

// Every request of the largest load fits into the queue.
absl::StatusOr<tlcm::v1::ServerConfig> Resolved(int max_batch_size, int max_concurrency) {
  return tlcm::server::ResolveServerConfig(Config(max_batch_size, max_concurrency + 1),
                                           tlcm::AvailableDevices());
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

absl::StatusOr<std::unique_ptr<tlcm::server::Server>> StartServer(int max_batch_size,
                                                                  int max_concurrency) {
  TLCM_ASSIGN_OR_RETURN(tlcm::v1::ServerConfig config, Resolved(max_batch_size, max_concurrency));
  TLCM_ASSIGN_OR_RETURN(auto server, tlcm::server::Server::Start(config, Factory()));
  TLCM_RETURN_IF_ERROR(server->WaitUntilReady());
  return server;
}

absl::StatusOr<std::unique_ptr<tlcm::client::Client>> ClientOf(const tlcm::server::Server& s) {
  tlcm::client::ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", s.port());
  return tlcm::client::Client::Create(options);
}

absl::StatusOr<Targets> StartTargets(int max_concurrency) {
  Targets t;
  TLCM_ASSIGN_OR_RETURN(tlcm::v1::ServerConfig config,
                        Resolved(absl::GetFlag(FLAGS_max_batch_size), max_concurrency));
  t.worker_times = std::make_unique<WorkerTimes>();
  tlcm::engine::EngineOptions options = tlcm::server::MakeEngineOptions(config);
  options.observer = t.worker_times.get();
  TLCM_ASSIGN_OR_RETURN(t.engine, tlcm::engine::Engine::Create(std::move(options), Factory()));
  TLCM_RETURN_IF_ERROR(t.engine->WaitUntilReady());
  TLCM_ASSIGN_OR_RETURN(t.batched,
                        StartServer(absl::GetFlag(FLAGS_max_batch_size), max_concurrency));
  TLCM_ASSIGN_OR_RETURN(t.unbatched, StartServer(1, max_concurrency));
  TLCM_ASSIGN_OR_RETURN(t.batched_client, ClientOf(*t.batched));
  TLCM_ASSIGN_OR_RETURN(t.unbatched_client, ClientOf(*t.unbatched));
  return t;
}

LoadResult InProcess(tlcm::engine::Engine& engine, const std::vector<int>& mix, const Load& load) {
  return RunLoad(load.requests, load.concurrency, [&](int i) {
    tlcm::engine::GenerationRequest request;
    request.model = "bench";
    request.prompt = PromptOf(i);
    request.steps = StepsOf(i, mix);
    request.seed = static_cast<uint64_t>(i);
    request.format = load.format;
    auto sink = std::make_shared<WaitingSink>();
    if (!engine.Submit(std::move(request), sink).ok()) return std::optional<int>();
    return sink->Wait();
  });
}

LoadResult ThroughGrpc(tlcm::client::Client& client, const std::vector<int>& mix,
                       const Load& load) {
  const tlcm::v1::ImageFormat format =
      load.format == tlcm::ImageFormat::kPng    ? tlcm::v1::IMAGE_FORMAT_PNG
      : load.format == tlcm::ImageFormat::kJpeg ? tlcm::v1::IMAGE_FORMAT_JPEG
                                                : tlcm::v1::IMAGE_FORMAT_WEBP;
  return RunLoad(load.requests, load.concurrency, [&](int i) {
    tlcm::v1::GenerateRequest request;
    request.set_model("bench");
    request.set_prompt(PromptOf(i));
    request.set_steps(StepsOf(i, mix));
    request.set_seed(static_cast<uint64_t>(i));
    request.set_format(format);
    const tlcm::client::GenerateResult result = client.GenerateBlocking(request);
    if (!result.status.ok()) return std::optional<int>();
    return std::optional<int>(result.metrics.batch_size());
  });
}

LoadResult ThroughHttp(int port, const std::vector<int>& mix, const Load& load) {
  const std::string format(tlcm::ImageFormatName(load.format));
  return RunLoad(load.requests, load.concurrency, [&](int i) {
    // One keep-alive connection per client thread (RunLoad starts new threads per run).
    thread_local std::unique_ptr<httplib::Client> client;
    if (client == nullptr) {
      client = std::make_unique<httplib::Client>("127.0.0.1", port);
      client->set_read_timeout(600);
    }
    const nlohmann::json body = {{"model", "bench"},         {"prompt", PromptOf(i)},
                                 {"steps", StepsOf(i, mix)}, {"seed", i},
                                 {"output_format", format},  {"response_format", "b64_json"}};
    const httplib::Result result =
        client->Post("/v1/images/generations", body.dump(), "application/json");
    if (!result || result->status != 200) return std::optional<int>();
    const nlohmann::json answer = nlohmann::json::parse(result->body, nullptr, false);
    std::string image;
    if (answer.is_discarded() ||
        !absl::Base64Unescape(answer["data"][0]["b64_json"].get<std::string>(), &image)) {
      return std::optional<int>();
    }
    return std::optional<int>(answer["tlcm"]["metrics"]["batch_size"].get<int>());
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
  std::vector<Load> loads;
  int max_concurrency = 1;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_format), ',')) {
    absl::StatusOr<tlcm::ImageFormat> format = tlcm::ParseImageFormat(name);
    if (!format.ok()) {
      std::cerr << "--format: " << format.status().message() << "\n";
      return 2;
    }
    for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_concurrency), ',')) {
      Load load;
      load.format = *format;
      if (!absl::SimpleAtoi(part, &load.concurrency) || load.concurrency < 1) {
        std::cerr << "--concurrency: '" << part << "' is not a positive integer\n";
        return 2;
      }
      load.requests = absl::GetFlag(FLAGS_requests) > 0 ? absl::GetFlag(FLAGS_requests)
                                                        : std::clamp(2 * load.concurrency, 16, 96);
      max_concurrency = std::max(max_concurrency, load.concurrency);
      loads.push_back(load);
    }
  }
  tlcm::SetComputeThreads(absl::GetFlag(FLAGS_threads));
  absl::StatusOr<Targets> targets = StartTargets(max_concurrency);
  if (!targets.ok()) {
    std::cerr << targets.status() << "\n";
    return 1;
  }
  const int batch = absl::GetFlag(FLAGS_max_batch_size);
  for (const Load& load : loads) {
    std::vector<double> overhead, http_cost, gain;
    for (int round = 1; round <= absl::GetFlag(FLAGS_rounds); ++round) {
      targets->worker_times->TakeJsonFields();  // forget the previous load's
      const LoadResult in_process = InProcess(*targets->engine, mix, load);
      Print("in_process", "tlcm-engine", round, batch, load, in_process,
            targets->worker_times->TakeJsonFields());
      const LoadResult grpc = ThroughGrpc(*targets->batched_client, mix, load);
      Print("grpc", "tlcm-server", round, batch, load, grpc);
      const LoadResult http = ThroughHttp(targets->batched->http_port(), mix, load);
      Print("http", "tlcm-server", round, batch, load, http);
      const LoadResult unbatched = ThroughGrpc(*targets->unbatched_client, mix, load);
      Print("grpc_batch1", "tlcm-server", round, 1, load, unbatched);
      overhead.push_back(grpc.wall_ms / in_process.wall_ms);
      http_cost.push_back(http.wall_ms / grpc.wall_ms);
      gain.push_back(unbatched.wall_ms / grpc.wall_ms);
    }
    std::printf(
        "{\"serving_overhead_median\":%.3f,\"http_vs_grpc_median\":%.3f,"
        "\"batching_gain_median\":%.3f,\"rounds\":%zu,"
        "\"pipeline\":\"%s\",\"format\":\"%s\",\"requests\":%d,\"concurrency\":%d,"
        "\"size\":%d,\"max_batch_size\":%d,\"encoder_threads\":%d}\n",
        Median(overhead), Median(http_cost), Median(gain), overhead.size(), pipeline.c_str(),
        std::string(tlcm::ImageFormatName(load.format)).c_str(), load.requests, load.concurrency,
        absl::GetFlag(FLAGS_size), batch, targets->engine->encoder_threads());
  }
  targets->batched->Drain(absl::Seconds(30));
  targets->unbatched->Drain(absl::Seconds(30));
  return 0;
}
