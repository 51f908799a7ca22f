#include "models/layers/rms_norm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_util.h"

namespace tlcm {
namespace {

using ::tlcm::testing::AllClose;

TEST(RMSNormTest, NormalizesTheLastDimensionAndScales) {
  RMSNorm norm(4, 1e-6);
  {
    torch::NoGradGuard no_grad;
    norm->named_parameters()["weight"].copy_(torch::tensor({1.0f, 2.0f, 0.5f, -1.0f}));
  }
  const torch::Tensor x =
      torch::tensor({1.0f, -2.0f, 3.0f, 4.0f, 0.0f, 0.0f, 0.0f, 2.0f}).view({2, 4});
  // rms of row 0: sqrt(30 / 4); row 1: sqrt(4 / 4) = 1.
  const double r0 = 1.0 / std::sqrt(7.5 + 1e-6), r1 = 1.0 / std::sqrt(1.0 + 1e-6);
  const torch::Tensor expected =
      torch::tensor({1 * r0, -4 * r0, 1.5 * r0, -4 * r0, 0.0, 0.0, 0.0, -2 * r1}, torch::kFloat64)
          .view({2, 4});
  EXPECT_TRUE(AllClose(norm(x), expected, 1e-6));
}

TEST(RMSNormTest, HalfPrecisionWeightsGiveHalfPrecisionOutput) {
  RMSNorm norm(8);
  const torch::Tensor x = torch::randn({3, 8});
  const torch::Tensor ref = norm(x);
  norm->to(torch::kBFloat16);
  torch::Tensor out = norm(x.to(torch::kBFloat16));
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(AllClose(out, ref, 0.0, 1e-2));
}

}  // namespace
}  // namespace tlcm
