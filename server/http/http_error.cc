#include "server/http/http_error.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tlcm::server {
namespace {

struct CodeMapping {
  int http_status;
  const char* type;
  int retry_after_s;
};

CodeMapping MappingOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return {400, "invalid_request_error", 0};
    case absl::StatusCode::kUnauthenticated:
      return {401, "authentication_error", 0};
    case absl::StatusCode::kPermissionDenied:
      return {403, "permission_error", 0};
    case absl::StatusCode::kNotFound:
      return {404, "not_found_error", 0};
    case absl::StatusCode::kResourceExhausted:
      return {429, "rate_limit_error", 1};
    case absl::StatusCode::kUnavailable:
      return {503, "server_unavailable", 5};
    case absl::StatusCode::kDeadlineExceeded:
      return {504, "timeout_error", 0};
    case absl::StatusCode::kCancelled:
      return {499, "cancelled", 0};
    default:
      return {500, "server_error", 0};
  }
}

// The request field an engine or adapter message names first, as the HTTP API calls it.
nlohmann::json ParamOf(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return nullptr;
  const absl::string_view message = status.message();
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos || colon == 0 || colon > 32) return nullptr;
  const absl::string_view field = message.substr(0, colon);
  for (char c : field) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("_.[]").find(c) == absl::string_view::npos) {
      return nullptr;  // a field path such as loras[1].scale passes
    }
  }
  if (field == "num_images") return "n";
  if (field == "width" || field == "height") return "size";
  if (field == "format") return "output_format";
  if (field == "quality") return "output_compression";
  return std::string(field);
}

std::string ErrorBody(absl::string_view message, absl::string_view type, nlohmann::json param,
                      absl::string_view code) {
  nlohmann::json error = {{"message", std::string(message)},
                          {"type", std::string(type)},
                          {"param", std::move(param)},
                          {"code", std::string(code)}};
  return nlohmann::json{{"error", std::move(error)}}.dump(-1, ' ', false,
                                                          nlohmann::json::error_handler_t::replace);
}

}  // namespace

HttpError ToHttpError(const absl::Status& status) {
  const CodeMapping mapping = MappingOf(status.code());
  return HttpError{mapping.http_status,
                   ErrorBody(status.message(), mapping.type, ParamOf(status),
                             absl::AsciiStrToLower(absl::StatusCodeToString(status.code()))),
                   mapping.retry_after_s};
}

HttpError PayloadTooLargeError(size_t limit_bytes) {
  return HttpError{413,
                   ErrorBody(absl::StrCat("the request body is larger than ", limit_bytes,
                                          " bytes (ServerConfig.http_max_body_bytes)"),
                             "invalid_request_error", nullptr, "payload_too_large"),
                   0};
}

}  // namespace tlcm::server
