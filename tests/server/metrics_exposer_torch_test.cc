// The metrics endpoint inside a process that has LibTorch loaded, like the real tlcm-server.
// Regression test: prometheus-cpp's civetweb exposer could not start its threads there (their
// fixed 100 KiB stacks were smaller than the static TLS of Debian's LibTorch 1.13, OpenBLAS and
// glog).
#include <ATen/Parallel.h>

#include <prometheus/gauge.h>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "server/metrics_exposer.h"
#include "tests/server/http_exchange.h"

namespace tlcm::testing {
namespace {

TEST(MetricsExposerTorchTest, ServesInALibTorchProcess) {
  ASSERT_GE(at::get_num_threads(), 1);  // uses libtorch_cpu, so it is loaded for sure
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge().Name("tlcm_ready").Help("h").Register(*registry).Add({}).Set(1);
  auto exposer = server::MetricsExposer::Start("127.0.0.1", 0, registry);
  ASSERT_TRUE(exposer.ok()) << exposer.status();
  EXPECT_TRUE(absl::StrContains(HttpGet((*exposer)->port(), "/metrics"), "tlcm_ready 1"));
}

}  // namespace
}  // namespace tlcm::testing
