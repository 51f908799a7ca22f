// The /metrics endpoint (server/http/metrics_route.h on an HttpListener): protocol answers,
// errors, shutdown with a client still connected, and hostile clients (idle connections, a
// client that stops half-way through its request).
#include "server/http/metrics_route.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/http/http_listener.h"
#include "tests/server/http_exchange.h"

namespace tlcm::testing {
namespace {

using server::HttpListener;

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

absl::StatusOr<std::unique_ptr<HttpListener>> Start(
    const std::string& address, int port,
    std::shared_ptr<prometheus::Registry> registry = RegistryWithACounter(),
    HttpListener::Options options = {}) {
  return HttpListener::Start(
      "metrics", address, port, tlcm::v1::TlsConfig(), options,
      [registry](httplib::Server& http) { server::ServeMetrics(http, registry); });
}

std::unique_ptr<HttpListener> StartOnLoopback(
    std::shared_ptr<prometheus::Registry> registry = RegistryWithACounter(),
    HttpListener::Options options = {}) {
  auto listener = Start("127.0.0.1", 0, std::move(registry), options);
  EXPECT_TRUE(listener.ok()) << listener.status();
  return listener.ok() ? std::move(*listener) : nullptr;
}

TEST(MetricsRouteTest, ServesTheTextFormatAtMetrics) {
  auto listener = StartOnLoopback();
  ASSERT_NE(listener, nullptr);
  ASSERT_GT(listener->port(), 0);
  HttpResponse response =
      HttpExchange(listener->port(),
                   "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(
      absl::StrContains(response.headers, "Content-Type: text/plain; version=0.0.4; charset=utf-8"))
      << response.headers;
  EXPECT_TRUE(
      absl::StrContains(response.headers, absl::StrCat("Content-Length: ", response.body.size())))
      << response.headers;
  EXPECT_TRUE(absl::StrContains(response.body, "# TYPE tlcm_test_events_total counter"))
      << response.body;
  EXPECT_TRUE(absl::StrContains(response.body, "tlcm_test_events_total{kind=\"a\"} 3"))
      << response.body;
}

TEST(MetricsRouteTest, ScrapesSeeCurrentValuesAndIgnoreTheQuery) {
  auto registry = RegistryWithACounter();
  auto& gauge =
      prometheus::BuildGauge().Name("tlcm_test_level").Help("h").Register(*registry).Add({});
  auto listener = StartOnLoopback(registry);
  ASSERT_NE(listener, nullptr);
  gauge.Set(7);
  EXPECT_TRUE(
      absl::StrContains(HttpGet(listener->port(), "/metrics?name[]=x"), "tlcm_test_level 7"));
  gauge.Set(8);
  EXPECT_TRUE(absl::StrContains(HttpGet(listener->port(), "/metrics"), "tlcm_test_level 8"));
}

TEST(MetricsRouteTest, HeadAnswersHeadersOnly) {
  auto listener = StartOnLoopback();
  ASSERT_NE(listener, nullptr);
  HttpResponse response = HttpExchange(listener->port(), "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "");
}

TEST(MetricsRouteTest, OtherPathsMethodsAndGarbageAreRefused) {
  auto listener = StartOnLoopback();
  ASSERT_NE(listener, nullptr);
  const int port = listener->port();
  HttpResponse other = HttpExchange(port, "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(other.body, "metrics are at /metrics\n");
  EXPECT_EQ(HttpExchange(port, "GET /metricsx HTTP/1.0\r\n\r\n").status, 404);
  EXPECT_EQ(HttpExchange(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").status, 404);
  EXPECT_EQ(HttpExchange(port, "hello\r\n\r\n").status, 400);
  // A header line past the library's 8 KiB: refused (400) or closed without an answer.
  const int long_header =
      HttpExchange(port, "GET /metrics HTTP/1.0\r\nX: " + std::string(10000, 'a') + "\r\n\r\n")
          .status;
  EXPECT_TRUE(long_header == 400 || long_header == 0) << long_header;
  // Still serving after all that.
  EXPECT_TRUE(absl::StrContains(HttpGet(port, "/metrics"), "tlcm_test_events_total"));
}

TEST(MetricsRouteTest, BusyPortAndBadAddressAreUnavailableNamingTheAddress) {
  auto first = StartOnLoopback();
  ASSERT_NE(first, nullptr);
  auto second = Start("127.0.0.1", first->port());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(
      absl::StrContains(second.status().message(), absl::StrCat("127.0.0.1:", first->port())))
      << second.status();
  auto bad = Start("no-such-host.invalid", 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "no-such-host.invalid")) << bad.status();
}

// A TCP connection to the listener on loopback, or -1.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closed `fd` (end of stream or reset) within `timeout`.
bool ClosedWithin(int fd, absl::Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return false;
  char byte;
  return recv(fd, &byte, 1, MSG_DONTWAIT) <= 0;
}

// Reads what the server sends (it may answer 400 first) until it closes `fd`; whether that
// happened within `timeout`.
bool ReadsToCloseWithin(int fd, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  char buffer[4096];
  while (absl::Now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(end - absl::Now()))) <= 0) {
      return false;
    }
    if (recv(fd, buffer, sizeof(buffer), 0) <= 0) return true;
  }
  return false;
}

TEST(MetricsRouteTest, StopsWhileAClientHoldsAConnectionOpen) {
  HttpListener::Options options;
  options.io_timeout = absl::Seconds(1);
  auto listener = StartOnLoopback(RegistryWithACounter(), options);
  ASSERT_NE(listener, nullptr);
  const int fd = Connect(listener->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "GET /met", 8), 8);  // an unfinished request head
  const absl::Time start = absl::Now();
  listener.reset();  // waits at most the I/O timeout for the client
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  char byte;
  EXPECT_LE(read(fd, &byte, 1), 0);  // closed without an answer
  close(fd);
}

TEST(MetricsRouteTest, IdleConnectionsDoNotHoldUpAScrape) {
  auto listener = StartOnLoopback();  // 4 threads
  ASSERT_NE(listener, nullptr);
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(Connect(listener->port()));
  EXPECT_TRUE(absl::StrContains(HttpGet(listener->port(), "/metrics"), "tlcm_test_events_total"));
  for (int fd : idle) {
    ASSERT_GE(fd, 0);
    // Still open: the scrape was answered beside them, not after their timeout.
    EXPECT_FALSE(ClosedWithin(fd, absl::ZeroDuration()));
    close(fd);
  }
}

TEST(MetricsRouteTest, AClientThatStopsHalfWayIsCutOffAfterTheIoTimeout) {
  HttpListener::Options options;
  options.io_timeout = absl::Milliseconds(300);
  auto listener = StartOnLoopback(RegistryWithACounter(), options);
  ASSERT_NE(listener, nullptr);
  const int fd = Connect(listener->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "GET /metrics HTTP/1.1\r\nHo", 25), 25);
  EXPECT_TRUE(ReadsToCloseWithin(fd, absl::Seconds(10)));
  close(fd);
  EXPECT_TRUE(absl::StrContains(HttpGet(listener->port(), "/metrics"), "tlcm_test_events_total"));
}

}  // namespace
}  // namespace tlcm::testing
