// Every Prometheus metric of tlcm-server, registered in this one place (names, help texts,
// labels, buckets). server/http/metrics_route.h serves them over HTTP.
//
// Families (units in the names; `model` is a configured model name, or "" for calls naming no
// configured model or rejected before reaching the engine (authentication, malformed fields), so
// that clients cannot create label values):
//   tlcm_requests_total{model,code}                 Generate calls by final gRPC status code name
//   tlcm_request_duration_seconds{model}            admission -> terminal status (admitted calls)
//   tlcm_queue_duration_seconds{model}              admission -> first batch start
//   tlcm_text_encode_duration_seconds{model}        text encoding, per batch
//   tlcm_denoise_duration_seconds{model}            denoising loop, per batch
//   tlcm_denoise_step_duration_seconds{model}       one denoising step of a batch
//   tlcm_decode_duration_seconds{model}             VAE decode, per batch
//   tlcm_image_encode_duration_seconds{model}       PNG / JPEG / WebP encoding, per image
//   tlcm_batch_worker_duration_seconds{model}       how long a batch kept its device's worker
//                                                   busy (image encoding runs beside it)
//   tlcm_encoder_backlog                            images and previews waiting for or in
//                                                   encoding on the encoder threads
//   tlcm_batch_size{model}                          images per batch run
//   tlcm_batches_total{model,device,code}           batch runs by outcome
//   tlcm_queue_depth{model}                         requests waiting in the model's queue
//   tlcm_in_flight_requests{model}                  admitted requests not yet finished
//   tlcm_images_generated_total{model}              images delivered to clients
//   tlcm_denoising_steps_total{model}               denoiser forward passes (1 per step per batch)
//   tlcm_prompt_cache_hits_total{model}             prompt-embedding cache lookups that hit
//   tlcm_prompt_cache_misses_total{model}           ... that missed
//   tlcm_worker_ready{device,worker}                1 once a worker loaded and warmed its models
//   tlcm_device_memory_bytes{device,kind}           memory of a device after its latest batch
//                                                   run (warm-ups included):
//                                                   kind "allocated" / "reserved" (CUDA caching
//                                                   allocator), "resident" (CPU: the process's
//                                                   resident set size, shared by CPU workers)
//   tlcm_ready                                      1 while the server is SERVING, else 0
// Warm-up batches are not counted.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine_observer.h"

namespace tlcm::server {

// The metric families, fed by the engine (as its EngineObserver) and by the gRPC layer.
// Thread-safe: every method may be called from any thread, concurrently.
class ServerMetrics : public engine::EngineObserver {
 public:
  // Registers every family on `registry` (which must not hold them yet).
  explicit ServerMetrics(std::shared_ptr<prometheus::Registry> registry);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // A Generate call the gRPC layer answered itself, before the engine saw it (authentication,
  // malformed request fields). `model` must be a configured name or "" (what the server uses).
  void OnRejectedByServer(const std::string& model, absl::StatusCode code);
  // The server's health: SERVING (true) or not.
  void SetReady(bool ready);

  // engine::EngineObserver
  void OnQueueDepth(const std::string& model, int queued_requests) override;
  void OnInFlight(const std::string& model, int in_flight_requests) override;
  void OnAdmission(const std::string& model, const absl::Status& status) override;
  void OnRequestDone(const std::string& model, const absl::Status& status,
                     const engine::RequestMetrics& metrics) override;
  void OnBatchDone(const engine::BatchReport& report, bool warmup) override;
  void OnImageDelivered(const std::string& model, double encode_ms) override;
  void OnEncoderBacklog(int pending) override;
  void OnWorkerReady(const std::string& device, int worker, const absl::Status& status) override;
  void OnDeviceMemory(const std::string& device, int worker,
                      const engine::DeviceMemory& memory) override;
  void OnAdapterCache(const std::string& model, const std::string& device, int worker,
                      const engine::AdapterCacheStats& stats) override;

 private:
  void CountRequest(const std::string& model, absl::StatusCode code);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Family<prometheus::Histogram>& queue_duration_;
  prometheus::Family<prometheus::Histogram>& text_encode_duration_;
  prometheus::Family<prometheus::Histogram>& denoise_duration_;
  prometheus::Family<prometheus::Histogram>& denoise_step_duration_;
  prometheus::Family<prometheus::Histogram>& decode_duration_;
  prometheus::Family<prometheus::Histogram>& image_encode_duration_;
  prometheus::Family<prometheus::Histogram>& batch_worker_duration_;
  prometheus::Gauge& encoder_backlog_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Counter>& batches_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Counter>& images_generated_;
  prometheus::Family<prometheus::Counter>& denoising_steps_;
  prometheus::Family<prometheus::Counter>& prompt_cache_hits_;
  prometheus::Family<prometheus::Counter>& prompt_cache_misses_;
  prometheus::Family<prometheus::Gauge>& worker_ready_;
  prometheus::Family<prometheus::Gauge>& device_memory_;
  prometheus::Family<prometheus::Counter>& adapter_cache_hits_;
  prometheus::Family<prometheus::Counter>& adapter_cache_misses_;
  prometheus::Family<prometheus::Counter>& adapter_cache_evictions_;
  prometheus::Family<prometheus::Counter>& adapter_load_seconds_;
  prometheus::Family<prometheus::Gauge>& adapter_cache_bytes_;
  prometheus::Family<prometheus::Gauge>& adapter_cache_entries_;
  // The cumulative adapter-cache counters last reported, per (model, worker): counters advance
  // by the difference.
  absl::Mutex adapter_mu_;
  std::map<std::pair<std::string, int>, engine::AdapterCacheStats> adapter_seen_
      ABSL_GUARDED_BY(adapter_mu_);
  prometheus::Gauge& ready_;
};

}  // namespace tlcm::server
