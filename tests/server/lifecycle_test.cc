// Health transitions, drain (programmatic and on SIGTERM) with nothing accepted lost.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "server/run_server.h"
#include "server/shutdown_signal.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

using grpc::health::v1::HealthCheckResponse;
using tlcm::v1::GenerateResponse;

TEST(HealthTest, NotServingWhileLoadingThenServing) {
  auto control = NewFakePipelineControl();
  control->HoldLoading(true);
  TestServer server(BaseConfig(), /*wait_ready=*/false, control);
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  EXPECT_EQ(Health(*client), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(*client, server::kServiceName), HealthCheckResponse::NOT_SERVING);
  auto early = client->GenerateBlocking(SimpleRequest());
  EXPECT_EQ(early.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  tlcm::v1::ListModelsResponse models;
  ASSERT_TRUE(client->ListModels(&models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_FALSE(models.models(0).ready());

  control->HoldLoading(false);
  ASSERT_TRUE(server.server().WaitUntilReady().ok());
  EXPECT_EQ(Health(*client), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(*client, server::kServiceName), HealthCheckResponse::SERVING);
  EXPECT_TRUE(client->GenerateBlocking(SimpleRequest()).status.ok());
}

TEST(HealthTest, LivenessServesWhileLoadingAndDuringADrain) {
  auto control = NewFakePipelineControl();
  control->HoldLoading(true);
  TestServer server(BaseConfig(), /*wait_ready=*/false, control);
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  EXPECT_EQ(Health(*client), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(*client, server::kLivenessService), HealthCheckResponse::SERVING);
  control->HoldLoading(false);
  ASSERT_TRUE(server.server().WaitUntilReady().ok());
  control->HoldSteps(true);
  auto call = client->Generate(SimpleRequest("running"), {});
  ASSERT_TRUE(control->WaitForParkedBatches(1));
  std::thread drainer([&] { server.server().Drain(absl::Seconds(30)); });
  while (Health(*client) == HealthCheckResponse::SERVING) absl::SleepFor(absl::Milliseconds(2));
  // Draining: not ready, but alive (a liveness failure would kill the draining pod).
  EXPECT_EQ(Health(*client, server::kLivenessService), HealthCheckResponse::SERVING);
  control->HoldSteps(false);
  EXPECT_TRUE(call->Wait().ok());
  drainer.join();
}

TEST(HealthTest, LivenessFailsForGoodWhenAWorkerMakesNoProgress) {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_worker_stall_seconds(0.2);
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  EXPECT_EQ(Health(*client, server::kLivenessService), HealthCheckResponse::SERVING);
  server.control().SetManualStepping(true);  // the batch waits before its first step
  auto call = client->Generate(SimpleRequest("stuck"), {});
  ASSERT_TRUE(server.control().WaitForBlockedSteps(1));
  for (int i = 0;
       i < 2000 && Health(*client, server::kLivenessService) == HealthCheckResponse::SERVING; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(Health(*client, server::kLivenessService), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(*client), HealthCheckResponse::SERVING);  // readiness is another question
  server.control().SetManualStepping(false);
  EXPECT_TRUE(call->Wait().ok());
  // A stalled device is not trusted again: only a restart brings liveness back.
  EXPECT_EQ(Health(*client, server::kLivenessService), HealthCheckResponse::NOT_SERVING);
}

TEST(HealthTest, ModelsThatFinishLoadingDuringADrainAreNotReportedServing) {
  auto control = NewFakePipelineControl();
  control->HoldLoading(true);
  TestServer server(BaseConfig(), /*wait_ready=*/false, control);
  ASSERT_TRUE(server.ok());
  ::testing::internal::CaptureStderr();
  server.server().Drain(absl::Seconds(5));  // nothing accepted: it ends while the models load
  control->HoldLoading(false);
  ASSERT_TRUE(server.server().WaitUntilReady().ok());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("health SERVING"), std::string::npos) << log;
  EXPECT_NE(log.find("health stays NOT_SERVING"), std::string::npos) << log;
}

TEST(HealthTest, UnknownServiceIsNotFound) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  HealthCheckResponse::ServingStatus status;
  grpc::Status rpc = server.NewClient()->CheckHealth("no.such.Service", &status);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::NOT_FOUND);
}

// Requests running and queued when the drain starts all finish with OK and every image; new
// requests during the drain get UNAVAILABLE and health says NOT_SERVING.
TEST(DrainTest, FinishesAcceptedRequestsAndRefusesNewOnes) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  server.control().HoldSteps(true);
  constexpr int kCalls = 10;  // two workers x batches of 4: some run, the rest queue
  std::vector<std::unique_ptr<client::GenerateCall>> calls;
  std::vector<std::vector<GenerateResponse>> events(kCalls);
  std::vector<absl::Notification> queued(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    client::GenerateCallbacks callbacks{[&events, &queued, i](const GenerateResponse& e) {
                                          events[i].push_back(e);
                                          if (e.has_queued()) queued[i].Notify();
                                        },
                                        nullptr};
    calls.push_back(client->Generate(SimpleRequest(absl::StrCat("drain ", i)), callbacks));
  }
  for (auto& q : queued) ASSERT_TRUE(WaitFor(q));
  ASSERT_TRUE(server.control().WaitForParkedBatches(2));

  std::thread drainer([&] { server.server().Drain(absl::Seconds(30)); });
  // Wait until the drain is visible, then probe it.
  while (Health(*client) == HealthCheckResponse::SERVING) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_EQ(Health(*client), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(*client, server::kServiceName), HealthCheckResponse::NOT_SERVING);
  auto refused = client->GenerateBlocking(SimpleRequest("late"));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);

  server.control().HoldSteps(false);
  for (int i = 0; i < kCalls; ++i) {
    grpc::Status status = calls[i]->Wait();
    EXPECT_TRUE(status.ok()) << i << ": " << status.error_message();
    EXPECT_EQ(EventKinds(events[i]), "queued started step step step step image metrics") << i;
  }
  drainer.join();
}

TEST(DrainTest, GraceExpiryEndsUnfinishedRequestsWithUnavailable) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  server.control().HoldSteps(true);
  auto call = client->Generate(SimpleRequest("stuck"), {});
  ASSERT_TRUE(server.control().WaitForParkedBatches(1));
  server.server().Drain(absl::Milliseconds(100));
  grpc::Status status = call->Wait();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

// What tlcm-server's main() does after parsing its configuration, in a child process (signal
// handlers are per process): serve, receive SIGTERM with a request in flight, drain, return 0.
// The child exits 0 only when RunServerUntilSignal returned 0 and the request ended OK with all
// its events.
void ServeAndSigtermWithARequestInFlight() {
  if (!server::InstallShutdownSignalHandlers().ok()) _exit(10);
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_port(FreeLoopbackPort());
  auto resolved = server::ResolveServerConfig(config, {"cpu"});
  if (!resolved.ok()) _exit(11);
  auto control = NewFakePipelineControl();

  bool request_ok = false;
  std::thread client_thread([&] {
    client::ClientOptions options;
    options.target = absl::StrCat("127.0.0.1:", config.port());
    auto client = *client::Client::Create(options);
    while (Health(*client) != HealthCheckResponse::SERVING) absl::SleepFor(absl::Milliseconds(5));
    control->HoldSteps(true);  // after the warm-up, which would park too
    std::vector<GenerateResponse> events;
    auto call =
        client->Generate(SimpleRequest("in flight"),
                         {[&](const GenerateResponse& e) { events.push_back(e); }, nullptr});
    if (!control->WaitForParkedBatches(1)) return;
    kill(getpid(), SIGTERM);
    while (Health(*client) == HealthCheckResponse::SERVING) absl::SleepFor(absl::Milliseconds(2));
    control->HoldSteps(false);
    const grpc::Status status = call->Wait();
    request_ok =
        status.ok() && EventKinds(events) == "queued started step step step step image metrics";
    if (!request_ok) fprintf(stderr, "request: %s\n", status.error_message().c_str());
  });
  const int exit_code = server::RunServerUntilSignal(*resolved, MakeFakePipelineFactory(control));
  client_thread.join();
  _exit(exit_code == 0 && request_ok ? 0 : 12);
}

TEST(DrainDeathTest, SigtermDrainsWithNothingLostAndExitsZero) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ServeAndSigtermWithARequestInFlight(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace tlcm::testing
