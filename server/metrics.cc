#include "server/metrics.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace tlcm::server {
namespace {

using prometheus::Histogram;

// Latency of whole requests: 50 ms .. 10 min.
const Histogram::BucketBoundaries& RequestBuckets() {
  static const auto* buckets =
      new Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600};
  return *buckets;
}

// Latency of stages (text encode, denoise, decode, image encode, queue): 1 ms .. 2 min.
const Histogram::BucketBoundaries& StageBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  return *buckets;
}

// Images per batch.
const Histogram::BucketBoundaries& BatchSizeBuckets() {
  static const auto* buckets =
      new Histogram::BucketBoundaries{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
  return *buckets;
}

prometheus::Family<prometheus::Histogram>& HistogramFamily(prometheus::Registry& registry,
                                                           const char* name, const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
}

double Seconds(double ms) { return ms / 1000.0; }

std::string CodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

}  // namespace

ServerMetrics::ServerMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      requests_(prometheus::BuildCounter()
                    .Name("tlcm_requests_total")
                    .Help("Generate calls by model and final gRPC status code")
                    .Register(*registry_)),
      request_duration_(HistogramFamily(*registry_, "tlcm_request_duration_seconds",
                                        "Admitted Generate calls, admission to terminal status")),
      queue_duration_(HistogramFamily(*registry_, "tlcm_queue_duration_seconds",
                                      "Time from admission to the start of a request's first "
                                      "batch")),
      text_encode_duration_(HistogramFamily(*registry_, "tlcm_text_encode_duration_seconds",
                                            "Prompt encoding time per batch")),
      denoise_duration_(HistogramFamily(*registry_, "tlcm_denoise_duration_seconds",
                                        "Denoising loop time per batch")),
      denoise_step_duration_(HistogramFamily(*registry_, "tlcm_denoise_step_duration_seconds",
                                             "Mean time of one denoising step, per batch")),
      decode_duration_(
          HistogramFamily(*registry_, "tlcm_decode_duration_seconds", "VAE decode time per batch")),
      image_encode_duration_(HistogramFamily(*registry_, "tlcm_image_encode_duration_seconds",
                                             "PNG / JPEG / WebP encoding time per image")),
      batch_worker_duration_(HistogramFamily(*registry_, "tlcm_batch_worker_duration_seconds",
                                             "How long a batch kept its device's worker busy "
                                             "(image encoding runs beside it)")),
      encoder_backlog_(prometheus::BuildGauge()
                           .Name("tlcm_encoder_backlog")
                           .Help("Images and previews waiting for or in encoding")
                           .Register(*registry_)
                           .Add({})),
      batch_size_(HistogramFamily(*registry_, "tlcm_batch_size", "Images per batch run")),
      batches_(prometheus::BuildCounter()
                   .Name("tlcm_batches_total")
                   .Help("Batch runs by model, device and status code")
                   .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("tlcm_queue_depth")
                       .Help("Requests waiting in the model's queue")
                       .Register(*registry_)),
      in_flight_(prometheus::BuildGauge()
                     .Name("tlcm_in_flight_requests")
                     .Help("Admitted requests not yet finished (queued or running)")
                     .Register(*registry_)),
      images_generated_(prometheus::BuildCounter()
                            .Name("tlcm_images_generated_total")
                            .Help("Images delivered to clients")
                            .Register(*registry_)),
      denoising_steps_(prometheus::BuildCounter()
                           .Name("tlcm_denoising_steps_total")
                           .Help("Denoiser forward passes (one per step of a batch)")
                           .Register(*registry_)),
      prompt_cache_hits_(prometheus::BuildCounter()
                             .Name("tlcm_prompt_cache_hits_total")
                             .Help("Prompt-embedding cache lookups that hit")
                             .Register(*registry_)),
      prompt_cache_misses_(prometheus::BuildCounter()
                               .Name("tlcm_prompt_cache_misses_total")
                               .Help("Prompt-embedding cache lookups that missed")
                               .Register(*registry_)),
      worker_ready_(prometheus::BuildGauge()
                        .Name("tlcm_worker_ready")
                        .Help("1 once the device worker has loaded and warmed up its models")
                        .Register(*registry_)),
      device_memory_(prometheus::BuildGauge()
                         .Name("tlcm_device_memory_bytes")
                         .Help("Device memory after the device's latest batch run: kind "
                               "allocated / reserved (CUDA caching allocator) or resident (CPU: "
                               "the server process's resident set size)")
                         .Register(*registry_)),
      adapter_cache_hits_(prometheus::BuildCounter()
                              .Name("tlcm_adapter_cache_hits_total")
                              .Help("Style-adapter lookups served by the device's adapter cache")
                              .Register(*registry_)),
      adapter_cache_misses_(prometheus::BuildCounter()
                                .Name("tlcm_adapter_cache_misses_total")
                                .Help("Style-adapter lookups that loaded the adapter (first use "
                                      "or after eviction; failed loads included)")
                                .Register(*registry_)),
      adapter_cache_evictions_(prometheus::BuildCounter()
                                   .Name("tlcm_adapter_cache_evictions_total")
                                   .Help("Style adapters dropped from a device's adapter cache "
                                         "to stay within its byte budget")
                                   .Register(*registry_)),
      adapter_load_seconds_(prometheus::BuildCounter()
                                .Name("tlcm_adapter_load_seconds_total")
                                .Help("Time spent loading style adapters onto a device")
                                .Register(*registry_)),
      adapter_cache_bytes_(prometheus::BuildGauge()
                               .Name("tlcm_adapter_cache_bytes")
                               .Help("Device memory held by the resident style adapters")
                               .Register(*registry_)),
      adapter_cache_entries_(prometheus::BuildGauge()
                                 .Name("tlcm_adapter_cache_entries")
                                 .Help("Style adapters resident on the device")
                                 .Register(*registry_)),
      ready_(prometheus::BuildGauge()
                 .Name("tlcm_ready")
                 .Help("1 while the server reports SERVING, else 0")
                 .Register(*registry_)
                 .Add({})) {}

void ServerMetrics::CountRequest(const std::string& model, absl::StatusCode code) {
  requests_.Add({{"model", model}, {"code", CodeName(code)}}).Increment();
}

void ServerMetrics::OnRejectedByServer(const std::string& model, absl::StatusCode code) {
  CountRequest(model, code);
}

void ServerMetrics::SetReady(bool ready) { ready_.Set(ready ? 1 : 0); }

void ServerMetrics::OnQueueDepth(const std::string& model, int queued_requests) {
  queue_depth_.Add({{"model", model}}).Set(queued_requests);
}

void ServerMetrics::OnInFlight(const std::string& model, int in_flight_requests) {
  in_flight_.Add({{"model", model}}).Set(in_flight_requests);
}

void ServerMetrics::OnAdmission(const std::string& model, const absl::Status& status) {
  // Admitted requests are counted when they end (OnRequestDone).
  if (!status.ok()) CountRequest(model, status.code());
}

void ServerMetrics::OnRequestDone(const std::string& model, const absl::Status& status,
                                  const engine::RequestMetrics& metrics) {
  CountRequest(model, status.code());
  const prometheus::Labels labels{{"model", model}};
  request_duration_.Add(labels, RequestBuckets()).Observe(Seconds(metrics.total_ms));
  if (metrics.num_batches > 0) {
    queue_duration_.Add(labels, StageBuckets()).Observe(Seconds(metrics.queue_ms));
  }
}

void ServerMetrics::OnBatchDone(const engine::BatchReport& report, bool warmup) {
  if (warmup) return;
  const prometheus::Labels labels{{"model", report.model}};
  batches_
      .Add({{"model", report.model},
            {"device", report.device},
            {"code", CodeName(report.status.code())}})
      .Increment();
  batch_size_.Add(labels, BatchSizeBuckets()).Observe(report.batch_size);
  if (!report.status.ok()) return;
  text_encode_duration_.Add(labels, StageBuckets()).Observe(Seconds(report.timings.text_encode_ms));
  denoise_duration_.Add(labels, StageBuckets()).Observe(Seconds(report.timings.denoise_ms));
  denoise_step_duration_.Add(labels, StageBuckets()).Observe(Seconds(report.step_ms));
  decode_duration_.Add(labels, StageBuckets()).Observe(Seconds(report.timings.decode_ms));
  batch_worker_duration_.Add(labels, StageBuckets()).Observe(Seconds(report.worker_ms));
  denoising_steps_.Add(labels).Increment(report.steps);
  prompt_cache_hits_.Add(labels).Increment(report.timings.prompt_cache_hits);
  prompt_cache_misses_.Add(labels).Increment(report.timings.prompt_cache_misses);
}

void ServerMetrics::OnImageDelivered(const std::string& model, double encode_ms) {
  const prometheus::Labels labels{{"model", model}};
  images_generated_.Add(labels).Increment();
  image_encode_duration_.Add(labels, StageBuckets()).Observe(Seconds(encode_ms));
}

void ServerMetrics::OnEncoderBacklog(int pending) { encoder_backlog_.Set(pending); }

void ServerMetrics::OnWorkerReady(const std::string& device, int worker,
                                  const absl::Status& status) {
  worker_ready_.Add({{"device", device}, {"worker", absl::StrCat(worker)}})
      .Set(status.ok() ? 1 : 0);
}

void ServerMetrics::OnDeviceMemory(const std::string& device, int /*worker*/,
                                   const engine::DeviceMemory& memory) {
  const auto set = [&](const char* kind, int64_t bytes) {
    if (bytes >= 0) {
      device_memory_.Add({{"device", device}, {"kind", kind}}).Set(static_cast<double>(bytes));
    }
  };
  set("allocated", memory.allocated_bytes);
  set("reserved", memory.reserved_bytes);
  set("resident", memory.resident_bytes);
}

void ServerMetrics::OnAdapterCache(const std::string& model, const std::string& device, int worker,
                                   const engine::AdapterCacheStats& stats) {
  const prometheus::Labels labels = {{"model", model}, {"device", device}};
  engine::AdapterCacheStats last;
  {
    absl::MutexLock lock(&adapter_mu_);
    engine::AdapterCacheStats& seen = adapter_seen_[{model, worker}];
    last = seen;
    seen = stats;
  }
  adapter_cache_hits_.Add(labels).Increment(static_cast<double>(stats.hits - last.hits));
  adapter_cache_misses_.Add(labels).Increment(static_cast<double>(stats.misses - last.misses));
  adapter_cache_evictions_.Add(labels).Increment(
      static_cast<double>(stats.evictions - last.evictions));
  adapter_load_seconds_.Add(labels).Increment(stats.load_seconds - last.load_seconds);
  adapter_cache_bytes_.Add(labels).Set(static_cast<double>(stats.bytes));
  adapter_cache_entries_.Add(labels).Set(static_cast<double>(stats.entries));
}

}  // namespace tlcm::server
