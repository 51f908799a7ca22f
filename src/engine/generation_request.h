// What a client asks the engine for, and the limits a request is checked against. Torch-free.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/pipeline.h"
#include "image/image_format.h"

namespace tlcm::engine {

// One Generate call. Zero / empty / absent fields mean "the model's default" where noted.
struct GenerationRequest {
  std::string model;     // a configured model name (ModelStatus::info.name)
  std::string prompt;    // UTF-8; must hold a non-whitespace character; at most
                         // RequestLimits::max_prompt_bytes bytes. Text beyond the text
                         // encoders' token limit (77 CLIP tokens, max_sequence_length T5
                         // tokens) is truncated by the pipeline, as diffusers does.
  std::string prompt_2;  // the second text encoder's prompt; empty = `prompt`. Same byte limit.
  int steps = 0;         // denoising steps; 0 = ModelInfo::default_steps
  int width = 0;         // pixels; 0 = ModelInfo::default_width
  int height = 0;        // pixels; 0 = ModelInfo::default_height
  std::optional<uint64_t> seed;  // image i uses seed + i (mod 2^64); absent = random, reported
                                 // back by RequestHandle::seed() and every image event
  int num_images = 1;            // 1..RequestLimits::max_images_per_request
  std::optional<float> guidance_scale;  // absent = ModelInfo::default_guidance_scale
  std::string sampler;  // one of ModelInfo::samplers; empty = the first (the model's default)
  ImageFormat format = ImageFormat::kPng;  // encoding of images and previews
  int quality = 0;        // JPEG / WebP quality 1..100; 0 = kDefaultImageQuality; PNG ignores it
  bool previews = false;  // whether to send a cheap preview after each denoising step
  std::string client_request_id;  // opaque, echoed in logs; at most kMaxClientRequestIdBytes
  // Style adapters for every image: at most ModelInfo::max_loras, each name once, scale finite
  // in [-kMaxLoraScale, kMaxLoraScale]. Names the model does not offer fail admission with
  // NOT_FOUND (Pipeline::PrepareAdapters).
  std::vector<LoraChoice> loras;
  absl::Time deadline = absl::InfiniteFuture();  // absolute, on the engine's Clock
  // Image inputs (decoded by the front door): the picture to start from; with it, optionally, a
  // mask of the same size (white = repaint); how much of the schedule runs, (0, 1], absent =
  // DefaultStrength(). Without an image, width and height default to the model's; with one, to
  // its size rounded down to the model's size_multiple.
  std::shared_ptr<const RgbImage> image;
  std::shared_ptr<const RgbImage> mask;
  std::optional<double> strength;
};

// An input image may hold at most this many times the model's max_pixels (it is resized to the
// output size; the decoders already refuse more than 64 Mpixel before decoding).
inline constexpr int64_t kMaxInputPixelsPerOutputPixel = 4;

// The strength an image input runs at when the request names none: diffusers' FLUX img2img
// default for img2img, the whole schedule for inpainting.
inline double DefaultStrength(bool masked) { return masked ? 1.0 : 0.6; }

inline constexpr size_t kMaxClientRequestIdBytes = 128;

// Per-model admission limits beyond what ModelInfo states (steps, sizes, samplers).
struct RequestLimits {
  int max_images_per_request = 8;
  int max_prompt_bytes = 4096;  // per prompt field
  float min_guidance_scale = 0.0f;
  float max_guidance_scale = 30.0f;
};

// A request with every default filled in: what actually runs.
struct ResolvedRequest {
  BatchKey key;  // model, steps, width, height, sampler, image-input strength and mask
  // With an image input: the first of key.steps that runs (StartStep of the family at
  // key.strength); 0 otherwise.
  int start_step = 0;
  float guidance_scale = 0;
  int quality = 0;  // 1..100 (kDefaultImageQuality when the request left it 0)
};

// Checks `request` against the model's facts and limits and fills in the defaults (the seed is
// not touched). Errors: INVALID_ARGUMENT whose message names the field and the rule, e.g.
// "steps: 12 is outside the model's range [2, 8]". The model name is not checked here (the
// caller looked the model up). Deadlines are not checked here either.
// The loras part of ValidateRequest: count, names, scales (INVALID_ARGUMENT naming the entry).
absl::Status ValidateLoras(const std::vector<LoraChoice>& loras, const ModelInfo& info);

absl::StatusOr<ResolvedRequest> ValidateRequest(const GenerationRequest& request,
                                                const ModelInfo& info, const RequestLimits& limits);

}  // namespace tlcm::engine
