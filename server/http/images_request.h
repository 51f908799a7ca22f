// The body of POST /v1/images/generations (OpenAI's Images API plus fields of ours) turned into
// the gRPC API's GenerateRequest, so that both front doors reach the engine through one
// conversion (ToEngineRequest) with one set of defaults.
//
// Fields (all optional but `model` and `prompt`; docs/http.md):
//   model, prompt, prompt_2 (strings); n (integer -> num_images); size ("WIDTHxHEIGHT", or
//   "auto" = the model's default); response_format ("b64_json"; "url" is refused);
//   output_format ("png" | "jpeg" | "webp"); output_compression (0..100 -> quality, 0 taken as
//   1); user (string, logged only); stream (bool); partial_images (integer 0..8; > 0 with
//   stream asks for a preview after every step); steps (integer), seed (integer 0..2^64-1),
//   guidance_scale (number), sampler (string), strength (number; with an input image, which
//   only POST /v1/images/edits takes: edits_request.h), loras (array of {"name": string,
//   "scale": number (default 1)} -> GenerateRequest.loras; other keys in an entry are refused).
//   Other OpenAI fields (quality, style, background, moderation, ...) are ignored; `image` and
//   `mask` are refused, naming the edits route.
// Ranges the engine knows (steps, sizes, n, guidance, strength) are left to it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tlcm/v1/tlcm_service.pb.h"

namespace tlcm::server {

struct ImagesRequest {
  tlcm::v1::GenerateRequest request;
  bool stream = false;
  int partial_images = 0;
  std::string user;  // opaque; bounded by the body limit, logged truncated
};

// Errors: INVALID_ARGUMENT naming the field and the rule ("n: must be an integer", "size: must
// be \"WIDTHxHEIGHT\" ...", "response_format: \"url\" is not supported ...", "loras[1].scale: must
// be a number"), or "body: ..." when the body is not a JSON object.
absl::StatusOr<ImagesRequest> ParseImagesRequest(absl::string_view body);

// The same fields from a JSON object already parsed (the edits form is turned into one), with
// the same errors. `image` and `mask` are not read here.
absl::StatusOr<ImagesRequest> ImagesRequestFromJson(const nlohmann::json& fields);

}  // namespace tlcm::server
