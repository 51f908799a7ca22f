// A real tlcm server on an ephemeral loopback port over fake pipelines, and helpers to talk to
// it, for the end-to-end tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/server.h"
#include "server/server_config.h"
#include "tests/engine/fake_pipeline.h"
#include "tlcm_client.h"

namespace tlcm::testing {

using engine::testing::FakeImage;
using engine::testing::FakePipelineControl;
using engine::testing::MakeFakePipelineFactory;

// A fresh fake-pipeline control whose steps take 1 ms of real time (so that concurrent load
// piles up and batches).
std::shared_ptr<FakePipelineControl> NewFakePipelineControl();

// 127.0.0.1, a free gRPC port, no metrics endpoint and no HTTP listener (their tests turn them
// on), two CPU workers, one model "fake" (batch 4, 5 ms queue delay, queue of 16, steps 2..8
// default 4, 64x64 default, 128x128 max), drain grace 5 s.
tlcm::v1::ServerConfig BaseConfig();

// The model entry of BaseConfig, for tests that add more models.
tlcm::v1::ModelConfig FakeModel(const std::string& name);

class TestServer {
 public:
  // Starts a server for `config` (resolved against the devices {"cpu"}). With `wait_ready`,
  // returns once health is SERVING. Fails the test (ADD_FAILURE) when the server cannot start.
  explicit TestServer(tlcm::v1::ServerConfig config = BaseConfig(), bool wait_ready = true,
                      std::shared_ptr<FakePipelineControl> control = NewFakePipelineControl());
  ~TestServer();

  bool ok() const { return server_ != nullptr; }
  server::Server& server() { return *server_; }
  FakePipelineControl& control() { return *control_; }
  std::string target() const;

  // A client of this server; `options.target` is filled in.
  std::unique_ptr<client::Client> NewClient(client::ClientOptions options = {}) const;

 private:
  std::shared_ptr<FakePipelineControl> control_;
  std::unique_ptr<server::Server> server_;
};

// A request for model "fake" with `prompt`, 64x64, 4 steps, one image.
tlcm::v1::GenerateRequest SimpleRequest(const std::string& prompt = "a red cube");

// The event kinds of `events`, e.g. "queued started step step step step image metrics".
std::string EventKinds(const std::vector<tlcm::v1::GenerateResponse>& events);

// Waits for `notification` at most `timeout`; false when it timed out.
bool WaitFor(absl::Notification& notification, absl::Duration timeout = absl::Seconds(10));

// Health of `service` ("" = server), or UNKNOWN when the check itself failed.
// A loopback port that was free a moment ago (for servers in child processes, which cannot
// report an ephemeral port back).
int FreeLoopbackPort();

grpc::health::v1::HealthCheckResponse::ServingStatus Health(client::Client& client,
                                                            const std::string& service = "");

}  // namespace tlcm::testing
