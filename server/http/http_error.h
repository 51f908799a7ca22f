// The one mapping from absl::Status to an HTTP answer of the OpenAI-compatible API: status code,
// OpenAI's error shape {"error": {"message", "type", "param", "code"}} and, for refusals a
// client should retry later, a Retry-After delay.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace tlcm::server {

struct HttpError {
  int http_status = 500;
  std::string body;       // the JSON error object
  int retry_after_s = 0;  // > 0: send "Retry-After: <seconds>"
};

// INVALID_ARGUMENT / OUT_OF_RANGE / FAILED_PRECONDITION -> 400 "invalid_request_error",
// UNAUTHENTICATED -> 401, PERMISSION_DENIED -> 403, NOT_FOUND -> 404, RESOURCE_EXHAUSTED -> 429
// (Retry-After 1), UNAVAILABLE -> 503 (Retry-After 5), DEADLINE_EXCEEDED -> 504, CANCELLED ->
// 499 (the client went away; nobody reads it), anything else -> 500. `status` must not be OK.
//
// "param" is the field an INVALID_ARGUMENT message starts with ("steps: 12 is outside ...",
// "loras[1].scale: ..."),
// named as the HTTP request names it (num_images -> n, width / height -> size, format ->
// output_format, quality -> output_compression); null otherwise. "code" is the lower-case status
// code name ("invalid_argument", "resource_exhausted", ...). The message is the status message,
// which never repeats more than a bounded part of client text (util/client_text.h).
HttpError ToHttpError(const absl::Status& status);

// The HTTP status of a body that exceeds the size limit (413), as an error with that message.
HttpError PayloadTooLargeError(size_t limit_bytes);

}  // namespace tlcm::server
