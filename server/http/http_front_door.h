// The HTTP/1.1 front door onto the engine (docs/http.md): the OpenAI-compatible Images API
// (POST /v1/images/generations, plain JSON or server-sent events; POST /v1/images/edits, a
// multipart form with the input image, answered the same way), GET /v1/models, the probes
// /healthz and /readyz, and the playground page at /. Served by cpp-httplib (Debian's
// libcpp-httplib, built with OpenSSL): a listening thread and a pool of connection threads; a
// connection keeps its thread while it is open (keep-alive, a streamed answer), so no engine
// call ever waits for a thread of its own.
//
// Requests reach the engine through the gRPC adapter's conversion (ToEngineRequest), with the
// same defaults, bearer tokens (/v1/ only) and TLS files as the gRPC port; every error is
// OpenAI's error object with the status ToHttpError maps. A client that hangs up while its
// request waits or runs cancels it (its queue place is freed, or its images leave the batch at
// the next step boundary).
#pragma once

#include <atomic>
#include <memory>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "server/auth.h"
#include "server/http/http_listener.h"
#include "server/metrics.h"
#include "server/request_ids.h"
#include "tlcm/v1/server_config.pb.h"

namespace tlcm::server {

// What the probes answer; set by the Server as its health changes.
struct ProbeState {
  std::atomic<bool> ready{false};  // /readyz: models loaded and warm, not draining
  std::atomic<bool> live{true};    // /healthz: no device worker stalled
};

class HttpFrontDoor {
 public:
  // Listens on config.http_listen_address():config.http_port() (0 = a free port) with
  // config.tls() and the http_* limits of `config` (resolved). Pointers are not owned and must
  // outlive the front door; `auth` may be null (no authentication).
  // Errors: UNAVAILABLE naming the address when it cannot bind; INVALID_ARGUMENT when the TLS
  // files cannot be loaded.
  static absl::StatusOr<std::unique_ptr<HttpFrontDoor>> Start(
      const tlcm::v1::ServerConfig& config, engine::Engine* engine, ServerMetrics* metrics,
      const TokenAuthenticator* auth, RequestIdGenerator* request_ids, const ProbeState* probes);

  // Stop().
  ~HttpFrontDoor();

  HttpFrontDoor(const HttpFrontDoor&) = delete;
  HttpFrontDoor& operator=(const HttpFrontDoor&) = delete;

  int port() const { return listener_->port(); }

  // Stops accepting connections and waits for the open ones to end (each answer in progress is
  // written; idle keep-alive connections close within http_io_timeout_seconds). Call it once
  // the engine has drained, so that no answer waits for the engine any more. Idempotent.
  void Stop() { listener_->Stop(); }

 private:
  class Api;  // the handlers and what they use

  HttpFrontDoor() = default;

  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpListener> listener_;  // declared last: stopped before api_ goes
};

}  // namespace tlcm::server
