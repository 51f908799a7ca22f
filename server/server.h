// tlcm-server as a library: the engine, the gRPC service (with health, reflection, TLS, auth,
// keepalive and message limits), the HTTP front door and the Prometheus endpoint, wired from a
// resolved configuration.
// main() only adds flags, the real pipeline factory and signal handling; tests construct a Server
// with a fake pipeline factory on an ephemeral loopback port.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "server/auth.h"
#include "server/http/http_front_door.h"
#include "server/http/http_listener.h"
#include "server/metrics.h"
#include "server/request_ids.h"
#include "server/tlcm_service.h"
#include "tlcm/v1/server_config.pb.h"

namespace tlcm::server {

// The gRPC service name, as health checks and reflection know it. Its health (and the
// server's, "") is readiness: SERVING once the models are loaded and warm, NOT_SERVING while
// loading and from the start of a drain.
inline constexpr char kServiceName[] = "tlcm.v1.TlcmService";
// The health service name of liveness: SERVING from the start, through loading and drains,
// until a device worker stalls (ServerConfig.worker_stall_seconds); then NOT_SERVING for good.
inline constexpr char kLivenessService[] = "tlcm.v1.Liveness";

class Server {
 public:
  // Starts serving `config` (resolved by ResolveServerConfig): the gRPC port listens at once with
  // health NOT_SERVING while the engine loads and warms up the models in the background through
  // `factory`; health turns SERVING for "" and kServiceName once it is ready.
  // Errors: INVALID_ARGUMENT (engine options, TLS files), NOT_FOUND (token / TLS file missing),
  // UNAVAILABLE (a port cannot be bound).
  static absl::StatusOr<std::unique_ptr<Server>> Start(const tlcm::v1::ServerConfig& config,
                                                       engine::PipelineFactory factory);

  // Drain(0) unless drained already; then stops everything.
  ~Server();

  int port() const { return port_; }                  // the bound gRPC port
  int metrics_port() const { return metrics_port_; }  // -1 when metrics are disabled
  int http_port() const { return http_ == nullptr ? -1 : http_->port(); }  // -1: no HTTP

  // Blocks until the models are loaded and warm (OK; health is SERVING when this returns) or
  // loading failed (the error names the model and device; health stays NOT_SERVING).
  absl::Status WaitUntilReady();

  // Graceful shutdown: health NOT_SERVING at once and new Generate calls UNAVAILABLE; queued and
  // running requests go on for at most `grace`, then end with UNAVAILABLE; every accepted
  // request gets its terminal status and the stream its last message; then the gRPC server
  // stops. Later calls return at once. Blocks; thread-safe.
  void Drain(absl::Duration grace);
  // With the configured drain_grace_seconds.
  void Drain();

  // Blocks until a Drain (on any thread) has completed.
  void Wait();

 private:
  Server() = default;
  void WatchReadiness();
  // Polls the engine's progress until `stop_liveness_` or a stall, which turns kLivenessService
  // NOT_SERVING.
  void WatchLiveness(absl::Duration stall_limit);
  void StopLivenessWatch();

  tlcm::v1::ServerConfig config_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<HttpListener> metrics_listener_;  // GET /metrics (http/metrics_route.h)
  std::unique_ptr<TokenAuthenticator> auth_;
  std::unique_ptr<engine::Engine> engine_;
  RequestIdGenerator request_ids_;
  ProbeState probes_;
  std::unique_ptr<TlcmServiceImpl> service_;
  std::unique_ptr<HttpFrontDoor> http_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  int metrics_port_ = -1;

  absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification drained_;
  absl::Status ready_status_;  // written once before ready_ is notified
  absl::Notification ready_;
  std::thread readiness_thread_;
  absl::Notification stop_liveness_;
  std::thread liveness_thread_;
};

}  // namespace tlcm::server
