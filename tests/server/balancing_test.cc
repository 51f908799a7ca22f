// One client channel over several replicas: the service config the client builds, round-robin
// balancing, client-side health checking (a loading replica gets no calls), retries of refusals
// on another replica, and the load report in every call's trailers.
#include <cmath>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "repeated_calls.h"
#include "server/load_report.h"
#include "service_config.h"
#include "tests/server/exposition.h"
#include "tests/server/http_exchange.h"
#include "tests/server/test_server.h"
#include "tlcm/v1/load_report.pb.h"

namespace tlcm::testing {
namespace {

using grpc::health::v1::HealthCheckResponse;

// BaseConfig with the metrics endpoint on, for counting what reached a replica.
tlcm::v1::ServerConfig ReplicaConfig() {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_metrics_port(0);
  return config;
}

// Generate calls that reached `server` and ended with `code` (refusals at admission included).
int Requests(TestServer& server, const std::string& code) {
  const double value = ParseExposition(HttpGet(server.server().metrics_port(), "/metrics"))
                           .Value("tlcm_requests_total", {{"model", "fake"}, {"code", code}});
  return std::isnan(value) ? 0 : static_cast<int>(value);
}

// The peer string a client sees for `server`.
std::string Peer(const TestServer& server) { return absl::StrCat("ipv4:", server.target()); }

// A client over every server in `servers` (one "ipv4:a,b,c" target).
std::unique_ptr<client::Client> BalancedClient(const std::vector<const TestServer*>& servers,
                                               client::ClientOptions options = {}) {
  std::vector<std::string> addresses;
  for (const TestServer* server : servers) addresses.push_back(server->target());
  options.target = absl::StrCat("ipv4:", absl::StrJoin(addresses, ","));
  auto client = client::Client::Create(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

TEST(ServiceConfigTest, DefaultsBalanceWatchHealthAndRetryRefusals) {
  auto json = client::MakeServiceConfig(client::ClientOptions());
  ASSERT_TRUE(json.ok()) << json.status();
  const auto config = nlohmann::json::parse(*json);
  EXPECT_TRUE(config["loadBalancingConfig"][0].contains("round_robin")) << *json;
  EXPECT_EQ(config["healthCheckConfig"]["serviceName"], "tlcm.v1.TlcmService");
  const auto& method = config["methodConfig"][0];
  EXPECT_EQ(method["name"][0]["service"], "tlcm.v1.TlcmService");
  const auto& retry = method["retryPolicy"];
  EXPECT_EQ(retry["maxAttempts"], 3);
  EXPECT_EQ(retry["initialBackoff"], "0.100000000s");
  EXPECT_EQ(retry["maxBackoff"], "1.000000000s");
  EXPECT_EQ(retry["retryableStatusCodes"],
            nlohmann::json::array({"UNAVAILABLE", "RESOURCE_EXHAUSTED"}));
}

TEST(ServiceConfigTest, EachPartCanBeTurnedOffOrReplaced) {
  client::ClientOptions options;
  options.lb_policy = "pick_first";
  options.health_check_service = "";
  options.max_attempts = 1;
  auto json = client::MakeServiceConfig(options);
  ASSERT_TRUE(json.ok()) << json.status();
  const auto config = nlohmann::json::parse(*json);
  EXPECT_TRUE(config["loadBalancingConfig"][0].contains("pick_first")) << *json;
  EXPECT_FALSE(config.contains("healthCheckConfig")) << *json;
  EXPECT_FALSE(config.contains("methodConfig")) << *json;

  options.service_config = R"({"loadBalancingConfig": [{"round_robin": {}}]})";
  EXPECT_EQ(client::MakeServiceConfig(options).value(), options.service_config);
}

TEST(ServiceConfigTest, OptionsOutOfRangeAreRefused) {
  auto refused = [](void (*change)(client::ClientOptions&)) {
    client::ClientOptions options;
    change(options);
    return client::MakeServiceConfig(options).status().code();
  };
  EXPECT_EQ(refused([](auto& o) { o.lb_policy = "least_request"; }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused([](auto& o) { o.max_attempts = 0; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused([](auto& o) { o.max_attempts = 6; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused([](auto& o) { o.retry_initial_backoff = absl::ZeroDuration(); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused([](auto& o) { o.retry_max_backoff = absl::Milliseconds(10); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused([](auto& o) { o.service_config = "{not json"; }),
            absl::StatusCode::kInvalidArgument);
  client::ClientOptions options;
  options.service_config = R"({"loadBalancingConfig": [{"no_such_policy": {}}]})";
  EXPECT_EQ(client::Client::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BalancingTest, RoundRobinSpreadsCallsOverEveryAddress) {
  TestServer a(ReplicaConfig());
  TestServer b(ReplicaConfig());
  ASSERT_TRUE(a.ok() && b.ok());
  auto client = BalancedClient({&a, &b});
  std::map<std::string, int> calls;
  for (int i = 0; i < 20; ++i) {
    auto result = client->GenerateBlocking(SimpleRequest());
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    ++calls[result.peer];
  }
  EXPECT_GE(calls[Peer(a)], 5);
  EXPECT_GE(calls[Peer(b)], 5);
  EXPECT_EQ(calls[Peer(a)] + calls[Peer(b)], 20);

  client::ClientOptions pinned;
  pinned.lb_policy = "pick_first";
  auto pinned_client = BalancedClient({&a, &b}, pinned);
  std::map<std::string, int> pinned_calls;
  for (int i = 0; i < 6; ++i) ++pinned_calls[pinned_client->GenerateBlocking(SimpleRequest()).peer];
  EXPECT_EQ(pinned_calls.size(), 1u);
}

// A replica that is loading (health NOT_SERVING) gets no call at all while the client watches
// its health, and its share once it is SERVING. Without health checking the same replica is
// tried and refuses (the retry then saves the call).
TEST(BalancingTest, HealthCheckingKeepsCallsAwayFromAReplicaThatIsNotServing) {
  auto loading_control = NewFakePipelineControl();
  loading_control->HoldLoading(true);
  TestServer loading(ReplicaConfig(), /*wait_ready=*/false, loading_control);
  TestServer ready(ReplicaConfig());
  ASSERT_TRUE(loading.ok() && ready.ok());

  auto client = BalancedClient({&loading, &ready});
  for (int i = 0; i < 20; ++i) {
    auto result = client->GenerateBlocking(SimpleRequest());
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.peer, Peer(ready));
  }
  EXPECT_EQ(Requests(loading, "UNAVAILABLE"), 0);

  client::ClientOptions unwatched;
  unwatched.health_check_service = "";
  unwatched.retry_initial_backoff = absl::Milliseconds(5);
  auto blind_client = BalancedClient({&loading, &ready}, unwatched);
  for (int i = 0; i < 20; ++i) {
    auto result = blind_client->GenerateBlocking(SimpleRequest());
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.peer, Peer(ready));
  }
  EXPECT_GT(Requests(loading, "UNAVAILABLE"), 0) << "the unwatched client never tried it";

  loading_control->HoldLoading(false);
  ASSERT_TRUE(loading.server().WaitUntilReady().ok());
  bool reached = false;  // the SERVING update reaches the client's watch within a few calls
  for (int i = 0; i < 200 && !reached; ++i) {
    auto result = client->GenerateBlocking(SimpleRequest());
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    reached = result.peer == Peer(loading);
  }
  EXPECT_TRUE(reached);
}

// A replica whose queue is full answers RESOURCE_EXHAUSTED with no message first, so the call
// is sent again, to the other replica. With one attempt the same refusals reach the caller.
TEST(BalancingTest, RefusalsOfAFullReplicaAreRetriedOnAnother) {
  tlcm::v1::ServerConfig full_config = ReplicaConfig();
  full_config.clear_devices();
  full_config.add_devices("cpu");
  full_config.mutable_models(0)->set_max_batch_size(1);
  full_config.mutable_models(0)->set_max_queue_size(1);
  TestServer full(full_config);
  TestServer free(ReplicaConfig());
  ASSERT_TRUE(full.ok() && free.ok());
  // One call runs (held before its first step) and one waits: the queue is full.
  full.control().SetManualStepping(true);
  auto direct = full.NewClient();
  auto running = direct->Generate(SimpleRequest("running"), {});
  ASSERT_TRUE(full.control().WaitForBlockedSteps(1));
  absl::Notification queued;
  auto waiting = direct->Generate(SimpleRequest("waiting"),
                                  {[&queued](const tlcm::v1::GenerateResponse& event) {
                                     if (event.has_queued()) queued.Notify();
                                   },
                                   nullptr});
  ASSERT_TRUE(WaitFor(queued));

  client::ClientOptions quick;
  quick.retry_initial_backoff = absl::Milliseconds(5);
  auto client = BalancedClient({&full, &free}, quick);
  for (int i = 0; i < 20; ++i) {
    auto result = client->GenerateBlocking(SimpleRequest());
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.peer, Peer(free));
  }
  const int retried = Requests(full, "RESOURCE_EXHAUSTED");
  EXPECT_GT(retried, 0) << "round robin never picked the full replica";

  client::ClientOptions once;
  once.max_attempts = 1;
  auto no_retry_client = BalancedClient({&full, &free}, once);
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    auto result = no_retry_client->GenerateBlocking(SimpleRequest());
    if (result.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++refused;
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(Requests(full, "RESOURCE_EXHAUSTED"), retried + refused);

  full.control().SetManualStepping(false);
  EXPECT_TRUE(running->Wait().ok());
  EXPECT_TRUE(waiting->Wait().ok());
}

// Generate with a raw stub; returns the queued work the trailers reported, -1 when none.
int64_t GenerateForQueuedWork(client::Client& client, const tlcm::v1::GenerateRequest& request,
                              grpc::Status* status) {
  auto stub = tlcm::v1::TlcmService::NewStub(client.channel());
  grpc::ClientContext context;
  auto reader = stub->Generate(&context, request);
  tlcm::v1::GenerateResponse response;
  while (reader->Read(&response)) {
  }
  *status = reader->Finish();
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(server::kQueuedWorkKey);
  int64_t queued = -1;
  if (it != trailers.end()) {
    EXPECT_TRUE(absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &queued));
  }
  return queued;
}

// Every call's trailers tell the server's queued work (images x steps of everything admitted and
// not yet run), refusals included.
TEST(LoadReportTest, TrailersCarryTheQueuedWork) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  server.control().SetManualStepping(true);  // the batch waits before its first step
  tlcm::v1::GenerateRequest big = SimpleRequest("two images");
  big.set_num_images(2);
  big.set_steps(4);
  absl::Notification stepped;
  auto held = client->Generate(big, {[&stepped](const tlcm::v1::GenerateResponse& event) {
                                       if (event.has_step() && !stepped.HasBeenNotified()) {
                                         stepped.Notify();
                                       }
                                     },
                                     nullptr});
  ASSERT_TRUE(server.control().WaitForBlockedSteps(1));

  tlcm::v1::GenerateRequest unknown = SimpleRequest();
  unknown.set_model("no-such-model");
  grpc::Status status;
  EXPECT_EQ(GenerateForQueuedWork(*client, unknown, &status), 8);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  server.control().AllowSteps(1);  // one step of the batch: two image-steps
  ASSERT_TRUE(WaitFor(stepped));   // the server counted the step before it sent the event
  EXPECT_EQ(GenerateForQueuedWork(*client, unknown, &status), 6);

  server.control().SetManualStepping(false);
  ASSERT_TRUE(held->Wait().ok());
  EXPECT_EQ(GenerateForQueuedWork(*client, SimpleRequest("alone"), &status), 0);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// The ORCA trailer's bytes: what ORCA readers parse (field numbers of OrcaLoadReport).
TEST(LoadReportTest, OrcaReportHoldsQueuedWorkAndCallCost) {
  tlcm::v1::LoadReport report;
  ASSERT_TRUE(report.ParseFromString(server::SerializeLoadReport(12, 8)));
  EXPECT_EQ(report.named_metrics().at(server::kQueuedImageStepsMetric), 12);
  EXPECT_EQ(report.request_cost().at(server::kImageStepsCost), 8);
}

// Three replicas on loopback behind one "ipv4:a,b,c" target, as a client sees the pods of a
// headless Kubernetes service: `steady` (two workers, queue of 16), `tiny` (one worker, a queue of
// 3: the bursts of 8 calls that start each phase overflow it) and `draining` (drained after half
// the calls, with a call still running there so that its port stays open). Goals: every call
// ends OK (tiny's refusals are retried elsewhere), each live replica serves at least 20% of the
// calls, and the draining one gets no call once the client knows it is NOT_SERVING.
//
// Round robin does not see load: a replica that is full most of the time would get all three
// attempts of some calls (1 in 8 with two replicas) and fail them. Tiny's queue is sized so that
// it overflows in bursts only (docs/server.md).
TEST(ReplicasTest, ThreeReplicasOneDrainingOneWithATinyQueue) {
  TestServer steady(ReplicaConfig());
  TestServer draining(ReplicaConfig());
  tlcm::v1::ServerConfig tiny_config = ReplicaConfig();
  tiny_config.clear_devices();
  tiny_config.add_devices("cpu");
  tiny_config.mutable_models(0)->set_max_queue_size(3);
  TestServer tiny(tiny_config);
  ASSERT_TRUE(steady.ok() && draining.ok() && tiny.ok());
  auto client = BalancedClient({&steady, &draining, &tiny});
  constexpr int kCalls = 300;
  constexpr int kConcurrency = 8;
  // The first calls after the drain began may still be sent to it while its NOT_SERVING travels
  // to the client (each is refused at admission and retried elsewhere); none after them.
  constexpr int kSettlingCalls = 2 * kConcurrency;
  auto request = [](int) { return SimpleRequest(); };

  std::map<std::string, int> served;
  int failed = 0;
  auto tally = [&](const client::RepeatedCalls& run) {
    for (const auto& call : run.calls) {
      ++served[call.peer];
      if (!call.status.ok()) {
        ++failed;
        ADD_FAILURE() << call.status.error_code() << " " << call.status.error_message();
      }
    }
  };
  tally(client::RunRepeatedCalls(*client, kCalls / 2, kConcurrency, request));
  const int served_before_drain = served[Peer(draining)];

  // Drain one replica while a call is still running on it (its steps held).
  draining.control().HoldSteps(true);
  auto direct = draining.NewClient();
  auto last_call = direct->Generate(SimpleRequest("last call"), {});
  ASSERT_TRUE(draining.control().WaitForParkedBatches(1));
  std::thread drainer([&] { draining.server().Drain(absl::Seconds(30)); });
  while (Health(*direct, server::kServiceName) == HealthCheckResponse::SERVING) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  tally(client::RunRepeatedCalls(*client, kSettlingCalls, kConcurrency, request));
  const int refused_while_settling = Requests(draining, "UNAVAILABLE");
  tally(client::RunRepeatedCalls(*client, kCalls / 2 - kSettlingCalls, kConcurrency, request));
  const int refused_after = Requests(draining, "UNAVAILABLE") - refused_while_settling;
  const int tiny_refusals = Requests(tiny, "RESOURCE_EXHAUSTED");

  std::cout << "[ replicas ] " << kCalls << " calls, " << failed << " failed; served: steady "
            << served[Peer(steady)] << ", tiny " << served[Peer(tiny)] << ", draining "
            << served[Peer(draining)] << " (all before its drain); tiny refused " << tiny_refusals
            << " attempts; draining refused " << refused_while_settling << " attempts in the first "
            << kSettlingCalls << " calls of its drain, " << refused_after << " after\n";
  EXPECT_EQ(failed, 0);
  EXPECT_GT(tiny_refusals, 0) << "tiny never overflowed: the retries were not exercised";
  EXPECT_GE(served[Peer(steady)], kCalls / 5);
  EXPECT_GE(served[Peer(tiny)], kCalls / 5);
  EXPECT_EQ(served[Peer(draining)], served_before_drain);
  EXPECT_GT(served_before_drain, 0);
  EXPECT_EQ(refused_after, 0);

  draining.control().HoldSteps(false);
  EXPECT_TRUE(last_call->Wait().ok());
  drainer.join();
}

}  // namespace
}  // namespace tlcm::testing
