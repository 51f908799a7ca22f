// The /metrics HTTP endpoint on its own: protocol answers, errors, and shutdown with a client
// still connected.
#include "server/metrics_exposer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <prometheus/counter.h>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "http_exchange.h"

namespace tlcm::testing {
namespace {

using server::MetricsExposer;

std::shared_ptr<prometheus::Registry> RegistryWithACounter() {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("tlcm_test_events_total")
      .Help("Events of the exposer test.")
      .Register(*registry)
      .Add({{"kind", "a"}})
      .Increment(3);
  return registry;
}

std::unique_ptr<MetricsExposer> StartOnLoopback(
    std::shared_ptr<prometheus::Registry> registry = RegistryWithACounter()) {
  auto exposer = MetricsExposer::Start("127.0.0.1", 0, std::move(registry));
  EXPECT_TRUE(exposer.ok()) << exposer.status();
  return exposer.ok() ? std::move(*exposer) : nullptr;
}

TEST(MetricsExposerTest, ServesTheTextFormatAtMetrics) {
  auto exposer = StartOnLoopback();
  ASSERT_NE(exposer, nullptr);
  ASSERT_GT(exposer->port(), 0);
  HttpResponse response =
      HttpExchange(exposer->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(absl::StrContains(response.headers,
                                "Content-Type: text/plain; version=0.0.4; charset=utf-8"))
      << response.headers;
  EXPECT_TRUE(absl::StrContains(response.headers,
                                absl::StrCat("Content-Length: ", response.body.size())))
      << response.headers;
  EXPECT_TRUE(absl::StrContains(response.body, "# TYPE tlcm_test_events_total counter"))
      << response.body;
  EXPECT_TRUE(absl::StrContains(response.body, "tlcm_test_events_total{kind=\"a\"} 3"))
      << response.body;
}

TEST(MetricsExposerTest, ScrapesSeeCurrentValuesAndIgnoreTheQuery) {
  auto registry = RegistryWithACounter();
  auto& gauge = prometheus::BuildGauge().Name("tlcm_test_level").Help("h").Register(*registry).Add(
      {});
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  gauge.Set(7);
  EXPECT_TRUE(absl::StrContains(HttpGet(exposer->port(), "/metrics?name[]=x"), "tlcm_test_level 7"));
  gauge.Set(8);
  EXPECT_TRUE(absl::StrContains(HttpGet(exposer->port(), "/metrics"), "tlcm_test_level 8"));
}

TEST(MetricsExposerTest, HeadAnswersHeadersOnly) {
  auto exposer = StartOnLoopback();
  ASSERT_NE(exposer, nullptr);
  HttpResponse response = HttpExchange(exposer->port(), "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(absl::StrContains(response.headers, "Content-Length: ")) << response.headers;
  EXPECT_EQ(response.body, "");
}

TEST(MetricsExposerTest, OtherPathsMethodsAndGarbageAreRefused) {
  auto exposer = StartOnLoopback();
  ASSERT_NE(exposer, nullptr);
  const int port = exposer->port();
  EXPECT_EQ(HttpExchange(port, "GET / HTTP/1.0\r\n\r\n").status, 404);
  EXPECT_EQ(HttpExchange(port, "GET /metricsx HTTP/1.0\r\n\r\n").status, 404);
  HttpResponse post = HttpExchange(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_TRUE(absl::StrContains(post.headers, "Allow: GET, HEAD")) << post.headers;
  EXPECT_EQ(HttpExchange(port, "hello\r\n\r\n").status, 400);
  EXPECT_EQ(HttpExchange(port, "GET /metrics SMTP/2\r\n\r\n").status, 400);
  // A request head past 8 KiB.
  EXPECT_EQ(HttpExchange(port, "GET /metrics HTTP/1.0\r\nX: " + std::string(10000, 'a')).status,
            400);
  // Still serving after all that.
  EXPECT_TRUE(absl::StrContains(HttpGet(port, "/metrics"), "tlcm_test_events_total"));
}

TEST(MetricsExposerTest, BusyPortAndBadAddressAreUnavailableNamingTheAddress) {
  auto first = StartOnLoopback();
  ASSERT_NE(first, nullptr);
  auto second = MetricsExposer::Start("127.0.0.1", first->port(), RegistryWithACounter());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(second.status().message(),
                                absl::StrCat("127.0.0.1:", first->port())))
      << second.status();
  auto bad = MetricsExposer::Start("no-such-host.invalid", 0, RegistryWithACounter());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "no-such-host.invalid")) << bad.status();
}

TEST(MetricsExposerTest, StopsWhileAClientHoldsAConnectionOpen) {
  auto exposer = StartOnLoopback();
  ASSERT_NE(exposer, nullptr);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(exposer->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(write(fd, "GET /met", 8), 8);  // an unfinished request head
  exposer.reset();                         // must not wait for the client
  char byte;
  // Closed without an answer: end of stream, or a reset when the head was still unread.
  EXPECT_LE(read(fd, &byte, 1), 0);
  close(fd);
}

}  // namespace
}  // namespace tlcm::testing
