// The /metrics HTTP endpoint on its own: protocol answers, errors, shutdown with a client still
// connected, and hostile clients (idle connections, a trickling client, a flood of connections).
#include "server/metrics_exposer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <prometheus/counter.h>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/server/http_exchange.h"

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
    std::shared_ptr<prometheus::Registry> registry = RegistryWithACounter(),
    MetricsExposer::Options options = {}) {
  auto exposer = MetricsExposer::Start("127.0.0.1", 0, std::move(registry), options);
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

TEST(MetricsExposerTest, ScrapesSeeCurrentValuesAndIgnoreTheQuery) {
  auto registry = RegistryWithACounter();
  auto& gauge =
      prometheus::BuildGauge().Name("tlcm_test_level").Help("h").Register(*registry).Add({});
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  gauge.Set(7);
  EXPECT_TRUE(
      absl::StrContains(HttpGet(exposer->port(), "/metrics?name[]=x"), "tlcm_test_level 7"));
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
  EXPECT_TRUE(
      absl::StrContains(second.status().message(), absl::StrCat("127.0.0.1:", first->port())))
      << second.status();
  auto bad = MetricsExposer::Start("no-such-host.invalid", 0, RegistryWithACounter());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "no-such-host.invalid")) << bad.status();
}

// A TCP connection to the exposer on loopback, or -1.
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

TEST(MetricsExposerTest, StopsWhileAClientHoldsAConnectionOpen) {
  auto exposer = StartOnLoopback();
  ASSERT_NE(exposer, nullptr);
  const int fd = Connect(exposer->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "GET /met", 8), 8);  // an unfinished request head
  exposer.reset();                         // must not wait for the client
  char byte;
  // Closed without an answer: end of stream, or a reset when the head was still unread.
  EXPECT_LE(read(fd, &byte, 1), 0);
  close(fd);
}

TEST(MetricsExposerTest, IdleConnectionsDoNotHoldUpAScrape) {
  auto exposer = StartOnLoopback();  // 4 answering threads, 5 s per connection
  ASSERT_NE(exposer, nullptr);
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(Connect(exposer->port()));
  EXPECT_TRUE(absl::StrContains(HttpGet(exposer->port(), "/metrics"), "tlcm_test_events_total"));
  for (int fd : idle) {
    ASSERT_GE(fd, 0);
    // Still open: the scrape was answered beside them, not after their deadline.
    EXPECT_FALSE(ClosedWithin(fd, absl::ZeroDuration()));
    close(fd);
  }
}

TEST(MetricsExposerTest, AClientTricklingItsRequestIsCutOffAtTheDeadline) {
  MetricsExposer::Options options;
  options.request_deadline = absl::Milliseconds(300);
  auto exposer = StartOnLoopback(RegistryWithACounter(), options);
  ASSERT_NE(exposer, nullptr);
  const int fd = Connect(exposer->port());
  ASSERT_GE(fd, 0);
  // One byte every 50 ms never finishes a head; each read on its own would be quick enough.
  const std::string head = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  bool closed = false;
  for (size_t i = 0; i < head.size() && !closed; ++i) {
    if (send(fd, &head[i], 1, MSG_NOSIGNAL) != 1) break;
    closed = ClosedWithin(fd, absl::Milliseconds(50));
  }
  EXPECT_TRUE(closed || ClosedWithin(fd, absl::Seconds(10)));
  close(fd);
  // Serving goes on.
  EXPECT_TRUE(absl::StrContains(HttpGet(exposer->port(), "/metrics"), "tlcm_test_events_total"));
}

TEST(MetricsExposerTest, ConnectionsBeyondTheQueueAreClosedAtOnce) {
  MetricsExposer::Options options;
  options.answer_threads = 1;
  options.max_waiting_connections = 2;
  options.request_deadline = absl::Seconds(30);
  auto exposer = StartOnLoopback(RegistryWithACounter(), options);
  ASSERT_NE(exposer, nullptr);
  std::vector<int> held;
  // The first occupies the thread, the next two fill the queue (waiting until accepted in order).
  for (int i = 0; i < 3; ++i) {
    held.push_back(Connect(exposer->port()));
    absl::SleepFor(absl::Milliseconds(50));  // let the accepting thread take it
  }
  const int extra = Connect(exposer->port());
  ASSERT_GE(extra, 0);
  EXPECT_TRUE(ClosedWithin(extra, absl::Seconds(10)));  // long before the 30 s deadline
  close(extra);
  for (int fd : held) {
    EXPECT_FALSE(ClosedWithin(fd, absl::ZeroDuration()));
    close(fd);
  }
}

}  // namespace
}  // namespace tlcm::testing
