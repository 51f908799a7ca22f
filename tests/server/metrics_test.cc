// /metrics scraped over HTTP from a running server, parsed as the Prometheus text exposition
// format, and checked for structure (HELP / TYPE for every family, naming rules) and values.

#include <cmath>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/server/exposition.h"
#include "tests/server/http_exchange.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

tlcm::v1::ServerConfig WithMetrics() {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_metrics_port(0);
  return config;
}

TEST(MetricsTest, ScrapedExpositionIsWellFormedAndCountsRequests) {
  TestServer server(WithMetrics());
  ASSERT_TRUE(server.ok());
  ASSERT_GT(server.server().metrics_port(), 0);
  auto client = server.NewClient();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client->GenerateBlocking(SimpleRequest()).status.ok());
  auto bad_model = SimpleRequest();
  bad_model.set_model("nope");
  EXPECT_EQ(client->GenerateBlocking(bad_model).status.error_code(), grpc::StatusCode::NOT_FOUND);
  auto bad_steps = SimpleRequest();
  bad_steps.set_steps(20);
  EXPECT_EQ(client->GenerateBlocking(bad_steps).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // The in-flight gauge may lag the client's view of the end by a moment.
  Exposition metrics;
  for (int attempt = 0; attempt < 100; ++attempt) {
    metrics = ParseExposition(HttpGet(server.server().metrics_port(), "/metrics"));
    if (metrics.Value("tlcm_in_flight_requests", {{"model", "fake"}}) == 0) break;
    absl::SleepFor(absl::Milliseconds(10));
  }

  const std::map<std::string, std::string> kFamilies = {
      {"tlcm_requests_total", "counter"},
      {"tlcm_request_duration_seconds", "histogram"},
      {"tlcm_queue_duration_seconds", "histogram"},
      {"tlcm_text_encode_duration_seconds", "histogram"},
      {"tlcm_denoise_duration_seconds", "histogram"},
      {"tlcm_denoise_step_duration_seconds", "histogram"},
      {"tlcm_decode_duration_seconds", "histogram"},
      {"tlcm_image_encode_duration_seconds", "histogram"},
      {"tlcm_batch_size", "histogram"},
      {"tlcm_batches_total", "counter"},
      {"tlcm_queue_depth", "gauge"},
      {"tlcm_in_flight_requests", "gauge"},
      {"tlcm_images_generated_total", "counter"},
      {"tlcm_denoising_steps_total", "counter"},
      {"tlcm_prompt_cache_hits_total", "counter"},
      {"tlcm_prompt_cache_misses_total", "counter"},
      {"tlcm_worker_ready", "gauge"},
      {"tlcm_ready", "gauge"},
  };
  for (const auto& [family, type] : kFamilies) {
    EXPECT_EQ(metrics.type[family], type) << family;
    EXPECT_FALSE(metrics.help[family].empty()) << family;
  }
  for (const auto& [family, type] : metrics.type) {
    EXPECT_TRUE(absl::StartsWith(family, "tlcm_")) << family;
    if (type == "counter") {
      EXPECT_TRUE(absl::EndsWith(family, "_total")) << family;
    }
  }

  EXPECT_EQ(metrics.Value("tlcm_requests_total", {{"model", "fake"}, {"code", "OK"}}), 3);
  EXPECT_EQ(metrics.Value("tlcm_requests_total", {{"model", ""}, {"code", "NOT_FOUND"}}), 1);
  EXPECT_EQ(metrics.Value("tlcm_requests_total", {{"model", "fake"}, {"code", "INVALID_ARGUMENT"}}),
            1);
  EXPECT_EQ(metrics.Value("tlcm_request_duration_seconds_count", {{"model", "fake"}}), 3);
  EXPECT_EQ(metrics.Value("tlcm_images_generated_total", {{"model", "fake"}}), 3);
  EXPECT_EQ(metrics.Value("tlcm_image_encode_duration_seconds_count", {{"model", "fake"}}), 3);
  EXPECT_EQ(metrics.Value("tlcm_batches_total", {{"model", "fake"}, {"code", "OK"}}), 3)
      << "warm-up batches must not count";
  EXPECT_EQ(metrics.Value("tlcm_denoising_steps_total", {{"model", "fake"}}), 12);
  EXPECT_EQ(metrics.Value("tlcm_prompt_cache_misses_total", {{"model", "fake"}}), 3);
  EXPECT_EQ(metrics.Value("tlcm_batch_size_count", {{"model", "fake"}}), 3);
  EXPECT_EQ(metrics.Value("tlcm_queue_depth", {{"model", "fake"}}), 0);
  EXPECT_EQ(metrics.Value("tlcm_in_flight_requests", {{"model", "fake"}}), 0);
  EXPECT_EQ(metrics.Value("tlcm_worker_ready", {{"device", "cpu"}, {"worker", "0"}}), 1);
  EXPECT_EQ(metrics.Value("tlcm_worker_ready", {{"device", "cpu"}, {"worker", "1"}}), 1);
  EXPECT_EQ(metrics.Value("tlcm_ready"), 1);
  EXPECT_EQ(
      metrics.Value("tlcm_request_duration_seconds_bucket", {{"model", "fake"}, {"le", "+Inf"}}),
      3);
}

TEST(MetricsTest, DeviceMemoryGaugeShowsWhatThePipelinesMeasure) {
  auto control = NewFakePipelineControl();
  engine::DeviceMemory memory;
  memory.resident_bytes = 123456789;  // what a CPU pipeline measures; CUDA sets the other two
  control->SetDeviceMemory(memory);
  TestServer server(WithMetrics(), /*wait_ready=*/true, control);
  ASSERT_TRUE(server.ok());
  // Reported after the warm-ups already; a request's batch reports again.
  ASSERT_TRUE(server.NewClient()->GenerateBlocking(SimpleRequest()).status.ok());
  const Exposition metrics = ParseExposition(HttpGet(server.server().metrics_port(), "/metrics"));
  EXPECT_EQ(metrics.type.at("tlcm_device_memory_bytes"), "gauge");
  EXPECT_EQ(metrics.Value("tlcm_device_memory_bytes", {{"device", "cpu"}, {"kind", "resident"}}),
            123456789);
  // Kinds the pipeline did not measure get no series.
  EXPECT_TRUE(std::isnan(metrics.Value("tlcm_device_memory_bytes", {{"kind", "allocated"}})));
  EXPECT_TRUE(std::isnan(metrics.Value("tlcm_device_memory_bytes", {{"kind", "reserved"}})));
}

TEST(MetricsTest, ReadyGaugeFollowsHealth) {
  auto control = NewFakePipelineControl();
  control->HoldLoading(true);
  TestServer server(WithMetrics(), /*wait_ready=*/false, control);
  ASSERT_TRUE(server.ok());
  const int port = server.server().metrics_port();
  EXPECT_EQ(ParseExposition(HttpGet(port, "/metrics")).Value("tlcm_ready"), 0);
  control->HoldLoading(false);
  ASSERT_TRUE(server.server().WaitUntilReady().ok());
  EXPECT_EQ(ParseExposition(HttpGet(port, "/metrics")).Value("tlcm_ready"), 1);
  server.server().Drain(absl::Seconds(1));
  EXPECT_EQ(ParseExposition(HttpGet(port, "/metrics")).Value("tlcm_ready"), 0);
}

TEST(MetricsTest, NegativePortDisablesTheEndpoint) {
  TestServer server;  // BaseConfig: metrics_port -1
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server.server().metrics_port(), -1);
}

}  // namespace
}  // namespace tlcm::testing
