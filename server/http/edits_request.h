// The multipart/form-data body of POST /v1/images/edits (OpenAI's image edits: an input image,
// an optional mask, and the generation fields) turned into the gRPC API's GenerateRequest, so
// that it reaches the engine through the same conversion (ToEngineRequest) and checks as every
// other request: the pictures are decoded and checked there (image / mask / strength errors
// name those fields).
//
// Parts (docs/http.md): `image` (a PNG, JPEG or WebP file; the openai package may name it
// `image[]` or `image[0]`; exactly one input image), `mask` (optional, a file of the image's size,
// white = repaint), and as text every field of POST /v1/images/generations (images_request.h):
// model, prompt, prompt_2, n, size, response_format, output_format, output_compression, user,
// stream, partial_images, steps, seed, guidance_scale, sampler, strength. A text field whose
// value reads as a JSON number is a number (n=2), "true" / "false" are booleans; each field at
// most once. Other OpenAI fields (background, quality, input_fidelity, ...) are ignored.
#pragma once

#include <httplib.h>

#include "absl/status/statusor.h"
#include "server/http/images_request.h"

namespace tlcm::server {

// Errors: INVALID_ARGUMENT naming the part and the rule ("image: is required ...", "image: one
// input image per request, got 2", "n: must be an integer", "prompt: given more than once"),
// with every error of ImagesRequestFromJson.
absl::StatusOr<ImagesRequest> ParseEditsRequest(const httplib::MultipartFormDataMap& form);

}  // namespace tlcm::server
