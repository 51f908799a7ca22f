// tlcm-fake-server: the real gRPC server (same flags-to-shutdown path as tlcm-server) over the
// fake pipelines of the end-to-end tests: no LibTorch, no model files, a configurable step time.
// For load tests of the serving layer (scripts/load_test.sh --fake) and for trying clients.
//
//   tlcm-fake-server [--port 50051] [--metrics_port 9464] [--http_port -1] [--step_ms 20]
//                    [--devices cpu,cpu]
//
// Serves one model, "fake" (64x64 default, up to 256x256, steps 2..8, batches of 4, style
// adapters "clay" and "ink" that leave the images as they are).
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "server/request_log.h"
#include "server/run_server.h"
#include "server/server_config.h"
#include "server/shutdown_signal.h"
#include "tests/engine/fake_pipeline.h"

ABSL_FLAG(std::string, listen_address, "127.0.0.1", "Address to listen on.");
ABSL_FLAG(int, port, 50051, "gRPC port (0 = any free).");
ABSL_FLAG(int, metrics_port, 9464, "Prometheus port (0 = any free, -1 = off).");
ABSL_FLAG(int, http_port, -1, "HTTP port (0 = any free, -1 = off).");
ABSL_FLAG(int, http_io_timeout_seconds, 10, "HTTP read / write / keep-alive timeout.");
ABSL_FLAG(std::string, devices, "cpu,cpu", "Comma-separated workers (\"cpu\" entries).");
ABSL_FLAG(int, step_ms, 20, "Milliseconds per fake denoising step.");
ABSL_FLAG(int, max_queue_size, 256, "Requests the model's queue holds.");
ABSL_FLAG(double, drain_grace_seconds, 10, "Drain grace on SIGTERM / SIGINT.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (!tlcm::server::InstallShutdownSignalHandlers().ok()) return 1;

  tlcm::v1::ServerConfig config;
  config.set_listen_address(absl::GetFlag(FLAGS_listen_address));
  config.set_port(absl::GetFlag(FLAGS_port));
  config.set_metrics_port(absl::GetFlag(FLAGS_metrics_port));
  config.set_http_port(absl::GetFlag(FLAGS_http_port));
  config.set_http_io_timeout_seconds(absl::GetFlag(FLAGS_http_io_timeout_seconds));
  config.set_drain_grace_seconds(absl::GetFlag(FLAGS_drain_grace_seconds));
  for (absl::string_view device : absl::StrSplit(absl::GetFlag(FLAGS_devices), ',')) {
    config.add_devices(std::string(device));
  }
  auto* model = config.add_models();
  model->set_name("fake");
  model->set_base_model_path("/nonexistent/fake-model");
  model->set_default_width(64);
  model->set_default_height(64);
  model->set_max_pixels(256 * 256);
  model->set_max_batch_size(4);
  model->set_max_queue_delay_ms(5);
  model->set_max_queue_size(absl::GetFlag(FLAGS_max_queue_size));
  model->set_adapter_folder("/nonexistent/fake-adapters");  // the fake pipelines never read it
  auto resolved = tlcm::server::ResolveServerConfig(config, {"cpu"});
  if (!resolved.ok()) {
    tlcm::server::LogEvent("fatal", resolved.status().ToString());
    return 1;
  }
  auto control = std::make_shared<tlcm::engine::testing::FakePipelineControl>();
  control->SetStepDelay(absl::Milliseconds(absl::GetFlag(FLAGS_step_ms)));
  control->SetRecordRuns(false);  // a load test may run for long
  control->SetAdapters("fake", {"clay", "ink"});
  return tlcm::server::RunServerUntilSignal(
      *resolved, tlcm::engine::testing::MakeFakePipelineFactory(control));
}
