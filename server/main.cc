// tlcm-server: serves TLCM text-to-image models over gRPC and HTTP (see docs/server.md,
// docs/http.md).
//
//   tlcm-server                                 # the built-in demo models (config/demo.textproto)
//   tlcm-server --config /etc/tlcm/server.textproto [--port 50051] [--devices cuda:0,cuda:1]
//
// Flags override the matching fields of the configuration. SIGTERM / SIGINT drain the server
// (health NOT_SERVING, no new requests, accepted ones finish within the drain grace) and exit 0;
// a second signal exits at once with 1. Exit code 1 also when the configuration is invalid or a
// model fails to load.
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "pipelines/pipeline_factory.h"
#include "server/demo_config.h"
#include "server/request_log.h"
#include "server/run_server.h"
#include "server/server_config.h"
#include "server/shutdown_signal.h"

ABSL_FLAG(std::string, config, "",
          "Server configuration (text-format tlcm.v1.ServerConfig). Empty = the built-in demo "
          "models (see --demo_config).");
ABSL_FLAG(std::string, demo_config, "",
          "Demo configuration used without --config. Empty = look it up: "
          "<exe>/../share/tlcm-serve/config/demo.textproto, then "
          "<source tree>/config/demo.textproto.");
ABSL_FLAG(std::optional<std::string>, listen_address, std::nullopt,
          "Address to listen on (default 0.0.0.0).");
ABSL_FLAG(std::optional<int>, port, std::nullopt, "gRPC port (default 50051; 0 = any free).");
ABSL_FLAG(std::optional<int>, metrics_port, std::nullopt,
          "Prometheus /metrics port (default 9464; 0 = any free; -1 = off).");
ABSL_FLAG(std::optional<std::string>, metrics_listen_address, std::nullopt,
          "Address of the /metrics endpoint (default: --listen_address).");
ABSL_FLAG(std::optional<int>, http_port, std::nullopt,
          "HTTP port: OpenAI-compatible Images API, playground, /healthz, /readyz (default 8080; "
          "0 = any free; -1 = off).");
ABSL_FLAG(std::optional<std::string>, http_listen_address, std::nullopt,
          "Address of the HTTP port (default: --listen_address).");
ABSL_FLAG(std::optional<std::string>, devices, std::nullopt,
          "Comma-separated devices: cpu, cuda:N, or all (every GPU, else cpu).");
ABSL_FLAG(std::optional<std::string>, tls_cert, std::nullopt, "PEM server certificate chain.");
ABSL_FLAG(std::optional<std::string>, tls_key, std::nullopt, "PEM server private key.");
ABSL_FLAG(std::optional<std::string>, tls_client_ca, std::nullopt,
          "PEM CA bundle; set = require client certificates (mutual TLS).");
ABSL_FLAG(std::optional<std::string>, auth_token_file, std::nullopt,
          "File of accepted bearer tokens, one per line; empty = no authentication.");
ABSL_FLAG(std::optional<double>, drain_grace_seconds, std::nullopt,
          "On SIGTERM/SIGINT, how long accepted requests may still run (default 30).");
ABSL_FLAG(std::optional<int>, threads, std::nullopt,
          "LibTorch intra-op compute threads; 0 = the number of cores (the default).");
ABSL_FLAG(std::optional<int>, encoder_threads, std::nullopt,
          "Image encoding threads; 0 = half the hardware threads, 1..16 (the default).");
ABSL_FLAG(std::optional<double>, worker_stall_seconds, std::nullopt,
          "Liveness (health service tlcm.v1.Liveness) fails when a device worker makes no "
          "progress in a batch for this long (default 300; 0 = never).");

namespace {

int Fail(const absl::Status& status) {
  tlcm::server::LogEvent("fatal", status.ToString());
  return 1;
}

// Applies the flags that were given on top of the file's values.
void ApplyFlags(tlcm::v1::ServerConfig* config) {
  if (auto v = absl::GetFlag(FLAGS_listen_address)) config->set_listen_address(*v);
  if (auto v = absl::GetFlag(FLAGS_port)) config->set_port(*v);
  if (auto v = absl::GetFlag(FLAGS_metrics_port)) config->set_metrics_port(*v);
  if (auto v = absl::GetFlag(FLAGS_metrics_listen_address)) config->set_metrics_listen_address(*v);
  if (auto v = absl::GetFlag(FLAGS_http_port)) config->set_http_port(*v);
  if (auto v = absl::GetFlag(FLAGS_http_listen_address)) config->set_http_listen_address(*v);
  if (auto v = absl::GetFlag(FLAGS_devices)) {
    config->clear_devices();
    for (absl::string_view device : absl::StrSplit(*v, ',', absl::SkipWhitespace())) {
      config->add_devices(std::string(device));
    }
  }
  if (auto v = absl::GetFlag(FLAGS_tls_cert)) config->mutable_tls()->set_cert_file(*v);
  if (auto v = absl::GetFlag(FLAGS_tls_key)) config->mutable_tls()->set_key_file(*v);
  if (auto v = absl::GetFlag(FLAGS_tls_client_ca)) config->mutable_tls()->set_client_ca_file(*v);
  if (auto v = absl::GetFlag(FLAGS_auth_token_file)) config->set_auth_token_file(*v);
  if (auto v = absl::GetFlag(FLAGS_drain_grace_seconds)) config->set_drain_grace_seconds(*v);
  if (auto v = absl::GetFlag(FLAGS_threads)) config->set_compute_threads(*v);
  if (auto v = absl::GetFlag(FLAGS_encoder_threads)) config->set_encoder_threads(*v);
  if (auto v = absl::GetFlag(FLAGS_worker_stall_seconds)) config->set_worker_stall_seconds(*v);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tlcm-server [--config FILE] [flags]: serves TLCM text-to-image models over gRPC and HTTP.");
  absl::ParseCommandLine(argc, argv);
  tlcm::server::InstallLibraryLogHandlers();
  // First, so that a signal during start-up or loading drains instead of killing the process.
  if (absl::Status s = tlcm::server::InstallShutdownSignalHandlers(); !s.ok()) return Fail(s);

  std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) {
    auto demo = tlcm::server::FindDemoConfig(absl::GetFlag(FLAGS_demo_config),
                                             tlcm::server::ExecutablePath(), TLCM_SOURCE_DIR);
    if (!demo.ok()) return Fail(demo.status());
    config_path = *demo;
    tlcm::server::LogEvent("config",
                           absl::StrCat("no --config: serving the demo models of ", config_path));
  }
  auto config = tlcm::server::LoadServerConfig(config_path);
  if (!config.ok()) return Fail(config.status());
  ApplyFlags(&*config);
  const std::vector<std::string> available = tlcm::AvailableDevices();
  auto resolved = tlcm::server::ResolveServerConfig(*std::move(config), available);
  if (!resolved.ok()) {
    return Fail(
        absl::InvalidArgumentError(absl::StrCat(config_path, ": ", resolved.status().message())));
  }
  tlcm::SetComputeThreads(resolved->compute_threads());

  return tlcm::server::RunServerUntilSignal(
      *resolved, [](const tlcm::ModelSpec& spec, const std::string& device) {
        return tlcm::CreatePipeline(spec, device);
      });
}
