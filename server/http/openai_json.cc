#include "server/http/openai_json.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "image/image_format.h"

namespace tlcm::server {
namespace {

using nlohmann::json;

std::string Dump(const json& value) {
  // Client text (prompts never appear, model names might) is replaced where it is not UTF-8.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string SizeOf(int width, int height) { return absl::StrCat(width, "x", height); }

}  // namespace

std::string ModelsJson(
    const std::vector<engine::ModelStatus>& models,
    absl::FunctionRef<std::vector<std::string>(const std::string& model)> adapters) {
  json data = json::array();
  for (const engine::ModelStatus& model : models) {
    const engine::ModelInfo& info = model.info;
    json tlcm = {{"ready", model.ready}};
    if (model.ready) {
      tlcm["family"] = info.family;
      tlcm["samplers"] = info.samplers;
      tlcm["default_steps"] = info.default_steps;
      tlcm["min_steps"] = info.min_steps;
      tlcm["max_steps"] = info.max_steps;
      tlcm["default_width"] = info.default_width;
      tlcm["default_height"] = info.default_height;
      tlcm["size_multiple"] = info.size_multiple;
      tlcm["max_pixels"] = info.max_pixels;
      tlcm["default_guidance_scale"] = info.default_guidance_scale;
      tlcm["max_images_per_request"] = model.limits.max_images_per_request;
      tlcm["adapters"] = adapters(info.name);
      tlcm["max_loras"] = info.max_loras;
    }
    data.push_back({{"id", info.name},
                    {"object", "model"},
                    {"created", 0},
                    {"owned_by", "tlcm-serve"},
                    {"tlcm", std::move(tlcm)}});
  }
  return Dump({{"object", "list"}, {"data", std::move(data)}});
}

json MetricsJson(const engine::RequestMetrics& metrics) {
  return {{"queue_ms", metrics.queue_ms},
          {"text_encode_ms", metrics.text_encode_ms},
          {"denoise_ms", metrics.denoise_ms},
          {"decode_ms", metrics.decode_ms},
          {"image_encode_ms", metrics.image_encode_ms},
          {"total_ms", metrics.total_ms},
          {"batch_size", metrics.batch_size},
          {"num_batches", metrics.num_batches},
          {"device", metrics.device}};
}

std::string ImagesResponseJson(const ImagesSummary& summary,
                               const std::vector<engine::GeneratedImage>& images,
                               const engine::RequestMetrics& metrics) {
  json data = json::array();
  for (const engine::GeneratedImage& image : images) {
    data.push_back({{"b64_json", absl::Base64Escape(image.data)}, {"tlcm_seed", image.seed}});
  }
  const std::string format =
      images.empty() ? "png" : std::string(ImageFormatName(images.front().format));
  return Dump({{"created", summary.created},
               {"data", std::move(data)},
               {"output_format", format},
               {"size", SizeOf(summary.width, summary.height)},
               {"tlcm",
                {{"model", summary.model},
                 {"steps", summary.steps},
                 {"seed", summary.seed},
                 {"metrics", MetricsJson(metrics)}}}});
}

std::string SseEvent(absl::string_view type, json data) {
  data["type"] = std::string(type);
  return absl::StrCat("event: ", type, "\ndata: ", Dump(data), "\n\n");
}

std::string QueuedSse(int position) { return SseEvent("tlcm.queued", {{"position", position}}); }

std::string StartedSse(const engine::StartedEvent& event) {
  return SseEvent("tlcm.started", {{"device", event.device}, {"batch_size", event.batch_size}});
}

std::string ProgressSse(const engine::StepEvent& event) {
  return SseEvent("tlcm.progress", {{"step", event.step}, {"total_steps", event.total_steps}});
}

std::string PartialImageSse(const engine::PreviewEvent& preview, int partial_image_index,
                            int64_t created_at) {
  return SseEvent("image_generation.partial_image",
                  {{"b64_json", absl::Base64Escape(preview.data)},
                   {"partial_image_index", partial_image_index},
                   {"output_format", std::string(ImageFormatName(preview.format))},
                   {"size", SizeOf(preview.width, preview.height)},
                   {"created_at", created_at},
                   {"tlcm_image_index", preview.index},
                   {"tlcm_step", preview.step}});
}

std::string CompletedSse(const engine::GeneratedImage& image, int64_t created_at) {
  return SseEvent("image_generation.completed",
                  {{"b64_json", absl::Base64Escape(image.data)},
                   {"output_format", std::string(ImageFormatName(image.format))},
                   {"size", SizeOf(image.width, image.height)},
                   {"created_at", created_at},
                   {"tlcm_image_index", image.index},
                   {"tlcm_seed", image.seed}});
}

std::string MetricsSse(const engine::RequestMetrics& metrics) {
  return SseEvent("tlcm.metrics", {{"metrics", MetricsJson(metrics)}});
}

std::string ErrorSse(const std::string& error_body) {
  return SseEvent("error", json::parse(error_body));
}

}  // namespace tlcm::server
