#include "schedulers/flow_match_tlcm_scheduler.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace tlcm {
namespace {

FlowMatchTlcmScheduler FluxDev() {
  FlowMatchSchedulerConfig config;  // FLUX.1-dev's scheduler_config.json values
  config.use_dynamic_shifting = true;
  config.base_shift = 0.5;
  config.max_shift = 1.15;
  config.base_image_seq_len = 256;
  config.max_image_seq_len = 4096;
  config.shift = 3.0;
  return FlowMatchTlcmScheduler(config);
}

void ExpectSigmas(const std::vector<float>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size() + 1);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 6e-6) << i;
  EXPECT_EQ(actual.back(), 0.0f);
}

TEST(FlowMatchTlcmSchedulerTest, SigmaTablesAt1024And512MatchSpec) {
  const FlowMatchTlcmScheduler s = FluxDev();
  EXPECT_NEAR(s.Mu(4096), 1.15, 1e-12);
  ExpectSigmas(s.Sigmas(2, 4096), {1, 0.75951});
  ExpectSigmas(s.Sigmas(4, 4096), {1, 0.90453, 0.75951, 0.51284});
  ExpectSigmas(s.Sigmas(8, 4096),
               {1, 0.95672, 0.90453, 0.84035, 0.75951, 0.65457, 0.51284, 0.31090});
  ExpectSigmas(s.Sigmas(4, 1024), {1, 0.84923, 0.65249, 0.38494});
}

TEST(FlowMatchTlcmSchedulerTest, EveryStepCountGivesADecreasingScheduleEndingAtZero) {
  const FlowMatchTlcmScheduler s = FluxDev();
  for (int steps = 2; steps <= 8; ++steps) {
    for (int64_t seq : {1024, 4096}) {
      const auto sigmas = s.Sigmas(steps, seq);
      ASSERT_EQ(sigmas.size(), static_cast<size_t>(steps + 1));
      EXPECT_EQ(sigmas[0], 1.0f);
      for (int i = 1; i <= steps; ++i) EXPECT_LT(sigmas[i], sigmas[i - 1]);
    }
  }
}

TEST(FlowMatchTlcmSchedulerTest, StepIsTheTlcmConsistencyUpdate) {
  const FlowMatchTlcmScheduler s = FluxDev();
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({2, 5, 8}), v = torch::randn({2, 5, 8}),
                      noise = torch::randn({2, 5, 8});
  const torch::Tensor out = s.Step(v, {1.0f, 0.5f}, x, {0.75f, 0.0f}, noise);
  EXPECT_TRUE(testing::AllClose(out[0], 0.75 * noise[0] + 0.25 * (x[0] - v[0]), 1e-6));
  EXPECT_TRUE(testing::AllClose(out[1], x[1] - 0.5 * v[1], 1e-6));
}

TEST(FlowMatchTlcmSchedulerTest, TransformerTimestepRoundTrips) {
  const FlowMatchTlcmScheduler s = FluxDev();
  const float sigma = 0.75951f;
  EXPECT_EQ(s.TransformerTimestep(sigma), (sigma * 1000.0f) / 1000.0f);
}

}  // namespace
}  // namespace tlcm
