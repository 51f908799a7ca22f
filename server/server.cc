#include "server/server.h"

#include <algorithm>

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpc/health/v1/health.pb.h"
#include "server/credentials.h"
#include "server/http/metrics_route.h"
#include "server/request_log.h"
#include "server/server_config.h"
#include "util/status_macros.h"

namespace tlcm::server {
namespace {

// How long, after the engine has drained, streams get to flush their last messages before the
// gRPC server cancels them.
constexpr absl::Duration kStreamFlushGrace = absl::Seconds(10);
// How long one read or write of a scrape may wait for Prometheus (plaintext, 4 threads).
constexpr absl::Duration kMetricsIoTimeout = absl::Seconds(5);

std::string HostPort(const std::string& address, int port) {
  const bool bare_ipv6 = absl::StrContains(address, ':') && !absl::StartsWith(address, "[");
  return bare_ipv6 ? absl::StrCat("[", address, "]:", port) : absl::StrCat(address, ":", port);
}

void ApplyChannelArguments(const tlcm::v1::ServerConfig& config, grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(config.max_receive_message_bytes());
  builder->SetMaxSendMessageSize(config.max_send_message_bytes());
  const auto& keepalive = config.keepalive();
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive.time_ms());
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive.timeout_ms());
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                              keepalive.permit_without_calls() ? 1 : 0);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              keepalive.min_client_ping_interval_ms());
  if (keepalive.max_connection_idle_ms() > 0) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                                keepalive.max_connection_idle_ms());
  }
  if (keepalive.max_connection_age_ms() > 0) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, keepalive.max_connection_age_ms());
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const tlcm::v1::ServerConfig& config,
                                                      engine::PipelineFactory factory) {
  std::unique_ptr<Server> server(new Server());
  server->config_ = config;

  server->metrics_ = std::make_unique<ServerMetrics>(std::make_shared<prometheus::Registry>());
  if (config.metrics_port() >= 0) {
    HttpListener::Options options;
    options.io_timeout = kMetricsIoTimeout;
    TLCM_ASSIGN_OR_RETURN(
        server->metrics_listener_,
        HttpListener::Start("metrics endpoint", config.metrics_listen_address(),
                            config.metrics_port(), tlcm::v1::TlsConfig(), options,
                            [registry = server->metrics_->registry()](httplib::Server& http) {
                              ServeMetrics(http, registry);
                            }));
    server->metrics_port_ = server->metrics_listener_->port();
  }
  if (!config.auth_token_file().empty()) {
    TLCM_ASSIGN_OR_RETURN(server->auth_, TokenAuthenticator::FromFile(config.auth_token_file()));
  }
  TLCM_ASSIGN_OR_RETURN(auto credentials, MakeServerCredentials(config.tls()));

  engine::EngineOptions options = MakeEngineOptions(config);
  options.observer = server->metrics_.get();
  TLCM_ASSIGN_OR_RETURN(server->engine_,
                        engine::Engine::Create(std::move(options), std::move(factory)));
  server->service_ = std::make_unique<TlcmServiceImpl>(
      server->engine_.get(), server->metrics_.get(), server->auth_.get(), &server->request_ids_);

  grpc::EnableDefaultHealthCheckService(true);
  // Reflection describes what the generated descriptor pool holds. gRPC serves the health
  // service without the generated health code, so nothing would link health.proto's descriptor
  // in: naming it does, and tools can call grpc.health.v1.Health/Check without a .proto file.
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = HostPort(config.listen_address(), config.port());
  builder.AddListeningPort(address, credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  ApplyChannelArguments(config, &builder);
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", address));
  }
  // The default health service starts SERVING for ""; nothing is ready yet.
  server->grpc_server_->GetHealthCheckService()->SetServingStatus("", false);
  server->grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, false);
  server->grpc_server_->GetHealthCheckService()->SetServingStatus(kLivenessService, true);
  server->metrics_->SetReady(false);
  if (config.http_port() >= 0) {
    TLCM_ASSIGN_OR_RETURN(
        server->http_,
        HttpFrontDoor::Start(config, server->engine_.get(), server->metrics_.get(),
                             server->auth_.get(), &server->request_ids_, &server->probes_));
  }

  LogEvent(
      "listening",
      absl::StrFormat(
          "gRPC on %s (port %d, %s%s), HTTP on %s, metrics on %s; devices: %d; models: %d", address,
          server->port_, config.tls().cert_file().empty() ? "plaintext" : "TLS",
          config.tls().client_ca_file().empty() ? "" : " + client certificates",
          server->http_ == nullptr ? std::string("(disabled)")
                                   : HostPort(config.http_listen_address(), server->http_->port()),
          server->metrics_port_ < 0
              ? std::string("(disabled)")
              : HostPort(config.metrics_listen_address(), server->metrics_port_) + "/metrics",
          config.devices_size(), config.models_size()));
  server->readiness_thread_ = std::thread([s = server.get()] { s->WatchReadiness(); });
  if (config.worker_stall_seconds() > 0) {
    const absl::Duration limit = absl::Seconds(config.worker_stall_seconds());
    server->liveness_thread_ = std::thread([s = server.get(), limit] { s->WatchLiveness(limit); });
  }
  return server;
}

void Server::WatchLiveness(absl::Duration stall_limit) {
  // Often enough that a stall is seen within a tenth of the limit (at most every 10 s).
  const absl::Duration period =
      std::clamp(stall_limit / 10, absl::Milliseconds(100), absl::Seconds(10));
  while (!stop_liveness_.WaitForNotificationWithTimeout(period)) {
    const absl::Status progress = engine_->CheckProgress(stall_limit);
    if (progress.ok()) continue;
    grpc_server_->GetHealthCheckService()->SetServingStatus(kLivenessService, false);
    probes_.live = false;
    LogEvent("stalled", absl::StrCat(progress.message(), "; health ", kLivenessService,
                                     " NOT_SERVING: restart the process"));
    return;
  }
}

void Server::StopLivenessWatch() {
  if (!stop_liveness_.HasBeenNotified()) stop_liveness_.Notify();
  if (liveness_thread_.joinable()) liveness_thread_.join();
}

void Server::WatchReadiness() {
  ready_status_ = engine_->WaitUntilReady();
  bool serving = false;
  {
    absl::MutexLock lock(&mu_);
    if (ready_status_.ok() && !draining_) {
      grpc_server_->GetHealthCheckService()->SetServingStatus("", true);
      grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
      metrics_->SetReady(true);
      probes_.ready = true;
      serving = true;
    }
  }
  if (!ready_status_.ok()) {
    LogEvent("load_failed", ready_status_.ToString());
  } else if (serving) {
    LogEvent("ready", "every model is loaded and warm; health SERVING");
  } else {
    LogEvent("ready",
             "every model is loaded and warm, but the server is shutting down; health "
             "stays NOT_SERVING");
  }
  ready_.Notify();
}

absl::Status Server::WaitUntilReady() {
  ready_.WaitForNotification();
  return ready_status_;
}

void Server::Drain(absl::Duration grace) {
  bool first;
  {
    absl::MutexLock lock(&mu_);
    first = !draining_;
    draining_ = true;
    if (first) {
      // Readiness only: liveness stays as it is, so that a draining pod is not killed.
      grpc_server_->GetHealthCheckService()->SetServingStatus("", false);
      grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, false);
      metrics_->SetReady(false);
      probes_.ready = false;
    }
  }
  if (!first) {
    drained_.WaitForNotification();
    return;
  }
  LogEvent("draining", absl::StrCat("health NOT_SERVING, new requests UNAVAILABLE; grace ",
                                    absl::FormatDuration(grace)));
  engine_->Drain(grace);
  StopLivenessWatch();
  // Every accepted request has its terminal status; let the streams write their last messages.
  grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + kStreamFlushGrace));
  if (http_ != nullptr) http_->Stop();
  LogEvent("drained", "every accepted request answered; gRPC and HTTP servers stopped");
  drained_.Notify();
}

void Server::Drain() { Drain(absl::Seconds(config_.drain_grace_seconds())); }

void Server::Wait() { drained_.WaitForNotification(); }

Server::~Server() {
  // A Start that failed half-way has no gRPC server; the engine's destructor drains it alone.
  if (grpc_server_ != nullptr) Drain(absl::ZeroDuration());
  if (readiness_thread_.joinable()) readiness_thread_.join();
  StopLivenessWatch();
}

}  // namespace tlcm::server
