// The JSON documents of the OpenAI-compatible HTTP API (docs/http.md owns the contract): the
// model list, the non-streamed images answer and the server-sent events of a streamed one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "engine/engine.h"
#include "engine/generation_events.h"

namespace tlcm::server {

// GET /v1/models: {"object": "list", "data": [{"id", "object": "model", "created": 0,
// "owned_by": "tlcm-serve", "tlcm": {family, samplers, default_steps, min_steps, max_steps,
// default_width, default_height, size_multiple, max_pixels, default_guidance_scale,
// max_images_per_request, adapters, max_loras, ready}}]}. OpenAI's model object has the first
// four keys; clients keep unknown ones, so ours live under "tlcm". `adapters(model)` gives the
// style adapters a model offers (Engine::Adapters). A model still loading lists only its id and
// "ready": false.
std::string ModelsJson(
    const std::vector<engine::ModelStatus>& models,
    absl::FunctionRef<std::vector<std::string>(const std::string& model)> adapters);

// {"queue_ms", "text_encode_ms", "denoise_ms", "decode_ms", "image_encode_ms", "total_ms",
//  "batch_size", "num_batches", "device"}.
nlohmann::json MetricsJson(const engine::RequestMetrics& metrics);

// What the answer states about the whole request.
struct ImagesSummary {
  int64_t created = 0;  // unix seconds of the request's arrival
  std::string model;
  int steps = 0;  // resolved
  int width = 0;  // pixels
  int height = 0;
  uint64_t seed = 0;  // of image 0; image i used seed + i
};

// The non-streamed answer: {"created", "data": [{"b64_json", "tlcm_seed"}, ...] in image order,
// "output_format", "size": "WxH", "tlcm": {"model", "steps", "seed", "metrics"}}.
std::string ImagesResponseJson(const ImagesSummary& summary,
                               const std::vector<engine::GeneratedImage>& images,
                               const engine::RequestMetrics& metrics);

// One server-sent event: "event: <type>\ndata: <data with "type": <type>>\n\n".
std::string SseEvent(absl::string_view type, nlohmann::json data);

// The events of a streamed answer, in order: tlcm.queued, tlcm.started, tlcm.progress per step,
// image_generation.partial_image per preview, image_generation.completed per image, then
// tlcm.metrics (success) or error (failure).
std::string QueuedSse(int position);
std::string StartedSse(const engine::StartedEvent& event);
std::string ProgressSse(const engine::StepEvent& event);
// `partial_image_index` counts the request's previews from 0.
std::string PartialImageSse(const engine::PreviewEvent& preview, int partial_image_index,
                            int64_t created_at);
std::string CompletedSse(const engine::GeneratedImage& image, int64_t created_at);
std::string MetricsSse(const engine::RequestMetrics& metrics);
// `error_body` is an HttpError body ({"error": {...}}).
std::string ErrorSse(const std::string& error_body);

}  // namespace tlcm::server
