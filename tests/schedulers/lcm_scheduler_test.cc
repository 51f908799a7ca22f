#include "schedulers/lcm_scheduler.h"

#include <fstream>

#include <gtest/gtest.h>

#include "schedulers/tlcm_table_scheduler.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

LcmScheduler SdxlLcm() {
  auto config = LcmSchedulerConfig::FromFile(
      testing::DataPath("reference/sdxl/case-1/model/scheduler/scheduler_config.json"));
  EXPECT_TRUE(config.ok()) << config.status();
  return LcmScheduler(*config);
}

TEST(LcmSchedulerTest, TimestepTablesFor2To8StepsMatchDiffusers) {
  // docs/model-notes.md §5 (LCMScheduler.set_timesteps with original_inference_steps 50).
  const std::vector<std::vector<int64_t>> expected = {{999, 499},
                                                      {999, 679, 339},
                                                      {999, 759, 499, 259},
                                                      {999, 799, 599, 399, 199},
                                                      {999, 839, 679, 499, 339, 179},
                                                      {999, 859, 719, 579, 439, 299, 159},
                                                      {999, 879, 759, 639, 499, 379, 259, 139}};
  const LcmScheduler scheduler = SdxlLcm();
  for (int steps = 2; steps <= 8; ++steps) {
    EXPECT_EQ(scheduler.Timesteps(steps), expected[steps - 2]) << steps << " steps";
  }
}

TEST(LcmSchedulerTest, AlphasCumprodMatchesReferenceValues) {
  const torch::Tensor ac = SdxlLcm().alphas_cumprod();
  ASSERT_EQ(ac.numel(), 1000);
  EXPECT_NEAR(ac[999].item<float>(), 0.004660, 1e-6);
  EXPECT_NEAR(ac[759].item<float>(), 0.052213, 1e-6);
  EXPECT_NEAR(ac[499].item<float>(), 0.2776695, 1e-7);
  EXPECT_NEAR(ac[259].item<float>(), 0.6589752, 1e-7);
  EXPECT_NEAR(ac[124].item<float>(), 0.8634071, 1e-7);
}

TEST(LcmSchedulerTest, StepFollowsTheConsistencyFormulaPerSample) {
  const LcmScheduler scheduler = SdxlLcm();
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({2, 4, 3, 3});
  const torch::Tensor eps = torch::randn({2, 4, 3, 3});
  const torch::Tensor noise = torch::randn({2, 4, 3, 3});
  // Sample 0 goes 999 -> 759, sample 1 is at its last step (t = 259).
  const torch::Tensor out = scheduler.Step(eps, {999, 259}, x, {759, -1}, noise);
  const auto ac = scheduler.alphas_cumprod().to(torch::kFloat64);
  const auto expect = [&](int b, int64_t t, int64_t next) {
    const double a = ac[t].item<double>();
    const torch::Tensor x0 = (x[b].to(torch::kFloat64) - std::sqrt(1 - a) * eps[b]) / std::sqrt(a);
    const double s = t * 10.0;
    const double c_skip = 0.25 / (s * s + 0.25), c_out = s / std::sqrt(s * s + 0.25);
    torch::Tensor d = c_out * x0 + c_skip * x[b].to(torch::kFloat64);
    if (next < 0) return d;
    const double an = ac[next].item<double>();
    return std::sqrt(an) * d + std::sqrt(1 - an) * noise[b].to(torch::kFloat64);
  };
  EXPECT_TRUE(testing::AllClose(out[0], expect(0, 999, 759), 1e-5));
  EXPECT_TRUE(testing::AllClose(out[1], expect(1, 259, -1), 1e-5));
}

TEST(LcmSchedulerTest, ConfigRejectsUnsupportedPrediction) {
  const std::string path = ::testing::TempDir() + "/sched_v.json";
  std::ofstream(path) << R"({"prediction_type": "v_prediction"})";
  auto config = LcmSchedulerConfig::FromFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path), std::string::npos);
  EXPECT_NE(config.status().message().find("v_prediction"), std::string::npos);
}

TEST(TlcmTableSchedulerTest, VisitsTheAuthorsGrid) {
  auto config = LcmSchedulerConfig::FromFile(
      testing::DataPath("reference/sdxl/case-1/model/scheduler/scheduler_config.json"));
  ASSERT_TRUE(config.ok());
  TlcmTableScheduler scheduler(*config);
  const std::vector<std::vector<int64_t>> expected = {{999},
                                                      {999, 499},
                                                      {999, 499, 124},
                                                      {999, 749, 499, 124},
                                                      {999, 749, 499, 249, 124},
                                                      {999, 749, 499, 374, 249, 124},
                                                      {999, 749, 624, 499, 374, 249, 124},
                                                      {999, 874, 749, 624, 499, 374, 249, 124}};
  for (int steps = 1; steps <= 8; ++steps) {
    EXPECT_EQ(scheduler.Timesteps(steps), expected[steps - 1]) << steps;
  }
  // The last step returns x0 itself.
  const torch::Tensor x = torch::randn({1, 4, 2, 2}), eps = torch::randn({1, 4, 2, 2});
  const torch::Tensor x0 = scheduler.Step(eps, {124}, x, {-1}, torch::Tensor());
  const double a = LcmScheduler(*config).alphas_cumprod()[124].item<double>();
  EXPECT_TRUE(testing::AllClose(x0, (x - std::sqrt(1 - a) * eps) / std::sqrt(a), 1e-5));
}

}  // namespace
}  // namespace tlcm
