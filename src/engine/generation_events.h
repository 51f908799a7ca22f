// What the engine reports back about one request: the event sink a caller (the gRPC adapter)
// implements, and the event payloads. Torch-free.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "image/image_format.h"

namespace tlcm::engine {

// The request's images [first_image, first_image + num_images) joined a batch on a device.
struct StartedEvent {
  std::string device;   // the device string the worker was configured with, e.g. "cuda:0"
  int worker = 0;       // index into EngineOptions::devices (tells apart several "cpu" workers)
  int batch_size = 0;   // images in the whole batch (all requests)
  int first_image = 0;  // this request's images in the batch
  int num_images = 0;
};

// Denoising step `step` (1-based) of `total_steps` finished for the request's images
// [first_image, first_image + num_images).
struct StepEvent {
  int step = 0;
  int total_steps = 0;
  int first_image = 0;
  int num_images = 0;
};

// A cheap approximation of image `index` after step `step` (latent resolution, no VAE), encoded
// like the final images.
struct PreviewEvent {
  int index = 0;
  int step = 0;
  std::string data;  // encoded bytes
  int width = 0;     // pixels
  int height = 0;
  ImageFormat format = ImageFormat::kPng;
};

// One final image.
struct GeneratedImage {
  int index = 0;      // 0..num_images-1 within the request
  uint64_t seed = 0;  // the request's seed + index: rerunning with it alone gives this image
  std::string data;   // encoded bytes
  int width = 0;      // pixels
  int height = 0;
  ImageFormat format = ImageFormat::kPng;
};

// Final per-request metrics, in milliseconds on the engine's Clock (stage times as the pipeline
// measured them). A request split over several batches sums each stage over its batches.
struct RequestMetrics {
  double queue_ms = 0;         // admission -> its first batch started (0 if it never started)
  double text_encode_ms = 0;   // prompt encoding of its batches (cache hits make it small)
  double denoise_ms = 0;       // denoising loops of its batches
  double decode_ms = 0;        // VAE decodes of its batches
  double image_encode_ms = 0;  // PNG / JPEG / WebP encoding of its images and previews
  double total_ms = 0;         // admission -> terminal status
  int batch_size = 0;          // images in the largest batch it ran in (0 if it never started)
  int num_batches = 0;         // batches it ran in (more than 1 when split)
  int num_images = 0;          // images delivered
  std::string device;          // device of its first batch ("" if it never started)
};

// Receives one request's events. The engine calls, in this order:
//   OnQueued once;
//   then per batch the request runs in: OnStarted, OnStep for steps 1..N with OnPreview
//   (when previews were asked for) after each step, OnImage as each image is ready;
//   then OnDone exactly once, always, last.
// A request split over several batches repeats the per-batch part (batches may run at the same
// time on different workers; their events then interleave, each in its own order).
// After a cancellation, deadline, drain or failure only OnDone follows.
//
// Threading: calls for one request never overlap and arrive in the order above, but may come
// from any thread (the submitting thread, a worker, the engine's timer, a thread calling
// Cancel or Drain) - including before Submit returns. No engine lock is held during a call, so
// a callback may call RequestHandle::Cancel (its effect is delivered after the callback
// returns). Callbacks should return quickly: a worker's batch waits on them. They must not
// call Engine::Drain or destroy the Engine.
class GenerationEventSink {
 public:
  virtual ~GenerationEventSink() = default;
  // `position`: requests of the same model queued ahead of this one (0 = next).
  virtual void OnQueued(int /*position*/) {}
  virtual void OnStarted(const StartedEvent& /*event*/) {}
  virtual void OnStep(const StepEvent& /*event*/) {}
  // By value: a sink takes ownership of the pixels and bytes (the defaults drop them).
  virtual void OnPreview(PreviewEvent /*preview*/) {
  }                                                  // NOLINT(performance-unnecessary-value-param)
  virtual void OnImage(GeneratedImage /*image*/) {}  // NOLINT(performance-unnecessary-value-param)
  // The terminal status: OK (all images delivered), CANCELLED (RequestHandle::Cancel),
  // DEADLINE_EXCEEDED, UNAVAILABLE (drained before it could finish), RESOURCE_EXHAUSTED
  // (device out of memory in its batch), INTERNAL (a pipeline or encoder failure; the message
  // names the model, device and component).
  virtual void OnDone(const absl::Status& status, const RequestMetrics& metrics) = 0;
};

}  // namespace tlcm::engine
