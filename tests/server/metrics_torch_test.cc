// The HTTP listeners inside a process that has LibTorch loaded, like the real tlcm-server.
// Regression test: prometheus-cpp's civetweb exposer could not start its threads there (their
// fixed 100 KiB stacks were smaller than the static TLS of Debian's LibTorch 1.13, OpenBLAS and
// glog); cpp-httplib's threads have the default stack.
#include <ATen/Parallel.h>

#include <prometheus/gauge.h>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "server/http/http_listener.h"
#include "server/http/metrics_route.h"
#include "tests/server/http_exchange.h"

namespace tlcm::testing {
namespace {

TEST(MetricsTorchTest, ServesInALibTorchProcess) {
  ASSERT_GE(at::get_num_threads(), 1);  // uses libtorch_cpu, so it is loaded for sure
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge().Name("tlcm_ready").Help("h").Register(*registry).Add({}).Set(1);
  auto listener = server::HttpListener::Start(
      "metrics", "127.0.0.1", 0, tlcm::v1::TlsConfig(), {},
      [registry](httplib::Server& http) { server::ServeMetrics(http, registry); });
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_TRUE(absl::StrContains(HttpGet((*listener)->port(), "/metrics"), "tlcm_ready 1"));
}

}  // namespace
}  // namespace tlcm::testing
