// Bearer-token authentication of gRPC calls and HTTP requests.
//
// Scope: Generate and ListModels check the token themselves (TlcmServiceImpl), so do the HTTP
// API's /v1/ endpoints (server/http); the playground page, /healthz, /readyz and /metrics are
// open, like the gRPC health service. The standard
// health service and server reflection are not checked, so Kubernetes probes, load balancers and
// grpcurl/ghz schema discovery work without a token (neither exposes anything but liveness and
// the public API schema).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/support/string_ref.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlcm::server {

// An immutable set of accepted tokens. Thread-safe (const after construction).
class TokenAuthenticator {
 public:
  // Reads one token per line from `path`; blank lines and lines starting with '#' are skipped,
  // surrounding whitespace is trimmed. Errors: NOT_FOUND / PERMISSION_DENIED naming the file when
  // it cannot be read, INVALID_ARGUMENT when it holds no token or a token with inner whitespace.
  static absl::StatusOr<std::unique_ptr<TokenAuthenticator>> FromFile(const std::string& path);

  // `tokens` must be non-empty strings.
  explicit TokenAuthenticator(std::vector<std::string> tokens);

  // OK when `metadata` has "authorization: Bearer <token>" with an accepted token, else
  // UNAUTHENTICATED saying what is missing (never echoing the presented token). Compares in time
  // independent of where a presented token first differs from an accepted one.
  absl::Status Check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;
  // The same check of an "authorization" value (nullopt: none was sent), e.g. an HTTP header.
  absl::Status CheckAuthorization(std::optional<absl::string_view> authorization) const;

 private:
  std::vector<std::string> tokens_;
};

}  // namespace tlcm::server
