#include "tests/server/test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tlcm::testing {

std::shared_ptr<FakePipelineControl> NewFakePipelineControl() {
  auto control = std::make_shared<FakePipelineControl>();
  control->SetStepDelay(absl::Milliseconds(1));
  return control;
}

tlcm::v1::ModelConfig FakeModel(const std::string& name) {
  tlcm::v1::ModelConfig model;
  model.set_name(name);
  model.set_base_model_path("/nonexistent/fake-model");  // the fake factory never reads it
  model.set_default_width(64);
  model.set_default_height(64);
  model.set_max_pixels(128 * 128);
  model.set_max_batch_size(4);
  model.set_max_queue_delay_ms(5);
  model.set_max_queue_size(16);
  return model;
}

tlcm::v1::ServerConfig BaseConfig() {
  tlcm::v1::ServerConfig config;
  config.set_listen_address("127.0.0.1");
  config.set_port(0);
  config.set_metrics_port(-1);
  config.set_http_port(-1);
  config.add_devices("cpu");
  config.add_devices("cpu");
  config.set_drain_grace_seconds(5);
  *config.add_models() = FakeModel("fake");
  return config;
}

TestServer::TestServer(tlcm::v1::ServerConfig config, bool wait_ready,
                       std::shared_ptr<FakePipelineControl> control)
    : control_(std::move(control)) {
  auto resolved = server::ResolveServerConfig(std::move(config), {"cpu"});
  if (!resolved.ok()) {
    ADD_FAILURE() << resolved.status();
    return;
  }
  auto started = server::Server::Start(*resolved, MakeFakePipelineFactory(control_));
  if (!started.ok()) {
    ADD_FAILURE() << started.status();
    return;
  }
  server_ = *std::move(started);
  if (wait_ready) {
    absl::Status ready = server_->WaitUntilReady();
    if (!ready.ok()) ADD_FAILURE() << ready;
  }
}

TestServer::~TestServer() {
  // Nothing may stay parked, or the engine could not stop.
  control_->HoldLoading(false);
  control_->HoldSteps(false);
  server_.reset();
}

std::string TestServer::target() const { return absl::StrCat("127.0.0.1:", server_->port()); }

std::unique_ptr<client::Client> TestServer::NewClient(client::ClientOptions options) const {
  options.target = target();
  auto client = client::Client::Create(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

tlcm::v1::GenerateRequest SimpleRequest(const std::string& prompt) {
  tlcm::v1::GenerateRequest request;
  request.set_model("fake");
  request.set_prompt(prompt);
  request.set_width(64);
  request.set_height(64);
  request.set_steps(4);
  request.set_seed(42);
  return request;
}

std::string EventKinds(const std::vector<tlcm::v1::GenerateResponse>& events) {
  std::vector<std::string> kinds;
  for (const auto& event : events) {
    switch (event.event_case()) {
      case tlcm::v1::GenerateResponse::kQueued:
        kinds.push_back("queued");
        break;
      case tlcm::v1::GenerateResponse::kStarted:
        kinds.push_back("started");
        break;
      case tlcm::v1::GenerateResponse::kStep:
        kinds.push_back("step");
        break;
      case tlcm::v1::GenerateResponse::kPreview:
        kinds.push_back("preview");
        break;
      case tlcm::v1::GenerateResponse::kImage:
        kinds.push_back("image");
        break;
      case tlcm::v1::GenerateResponse::kMetrics:
        kinds.push_back("metrics");
        break;
      default:
        kinds.push_back("none");
        break;
    }
  }
  return absl::StrJoin(kinds, " ");
}

bool WaitFor(absl::Notification& notification, absl::Duration timeout) {
  return notification.WaitForNotificationWithTimeout(timeout);
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(client::Client& client,
                                                            const std::string& service) {
  grpc::health::v1::HealthCheckResponse::ServingStatus status;
  grpc::Status rpc = client.CheckHealth(service, &status);
  return rpc.ok() ? status : grpc::health::v1::HealthCheckResponse::UNKNOWN;
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace tlcm::testing
