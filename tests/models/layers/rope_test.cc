#include "models/layers/rope.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_util.h"

namespace tlcm {
namespace {

using ::tlcm::testing::AllClose;

// Positions [S = 4, 3 axes] and axes dims [2, 4, 2]; the expected tables were computed with
// diffusers 0.31.0 FluxPosEmbed(theta=10000, axes_dim=[2, 4, 2]) and apply_rotary_emb.
torch::Tensor Ids() {
  return torch::tensor({0, 0, 0, 0, 1, 2, 0, 3, 1, 1, 0, 5}, torch::kFloat32).view({4, 3});
}

TEST(RopeTest, TablesMatchDiffusersFluxPosEmbed) {
  const torch::Tensor expected_cos =
      torch::tensor({1.000000000f,  1.000000000f, 1.000000000f, 1.000000000f,  1.000000000f,
                     1.000000000f,  1.000000000f, 1.000000000f, 1.000000000f,  1.000000000f,
                     0.540302277f,  0.540302277f, 0.999949992f, 0.999949992f,  -0.416146845f,
                     -0.416146845f, 1.000000000f, 1.000000000f, -0.989992499f, -0.989992499f,
                     0.999550045f,  0.999550045f, 0.540302277f, 0.540302277f,  0.540302277f,
                     0.540302277f,  1.000000000f, 1.000000000f, 1.000000000f,  1.000000000f,
                     0.283662200f,  0.283662200f})
          .view({4, 8});
  const torch::Tensor expected_sin =
      torch::tensor({0.000000000f,  0.000000000f, 0.000000000f, 0.000000000f, 0.000000000f,
                     0.000000000f,  0.000000000f, 0.000000000f, 0.000000000f, 0.000000000f,
                     0.841470957f,  0.841470957f, 0.009999833f, 0.009999833f, 0.909297407f,
                     0.909297407f,  0.000000000f, 0.000000000f, 0.141120002f, 0.141120002f,
                     0.029995501f,  0.029995501f, 0.841470957f, 0.841470957f, 0.841470957f,
                     0.841470957f,  0.000000000f, 0.000000000f, 0.000000000f, 0.000000000f,
                     -0.958924294f, -0.958924294f})
          .view({4, 8});
  RopeTables rope = MultiAxisRopeTables(Ids(), {2, 4, 2});
  EXPECT_EQ(rope.rotation.scalar_type(), torch::kComplexFloat);
  // diffusers repeats each pair's value for both of its channels; one per pair here.
  // float32 roundings of the float64 angles' cos / sin; the table is printed to 9 decimals.
  EXPECT_TRUE(AllClose(torch::real(rope.rotation), expected_cos.slice(1, 0, 8, 2), 1e-8));
  EXPECT_TRUE(AllClose(torch::imag(rope.rotation), expected_sin.slice(1, 0, 8, 2), 1e-8));
  EXPECT_TRUE(torch::equal(expected_cos.slice(1, 0, 8, 2), expected_cos.slice(1, 1, 8, 2)));
}

TEST(RopeTest, RotatesInterleavedPairsLikeDiffusers) {
  const torch::Tensor x = torch::arange(32, torch::kFloat32).view({1, 1, 4, 8}) / 10 - 1;
  const torch::Tensor expected =
      torch::tensor({-1.0000000f, -0.9000000f, -0.8000000f, -0.7000000f, -0.6000000f, -0.5000000f,
                     -0.4000000f, -0.3000000f, -0.2000000f, -0.1000000f, -0.0841471f, 0.0540302f,
                     0.1969901f,  0.3019849f,  -0.6211075f, 0.1556455f,  0.6000000f,  0.7000000f,
                     -0.9190019f, -0.7780973f, 0.9665550f,  1.1295004f,  -0.4455495f, 1.7121581f,
                     -0.5057832f, 1.9885129f,  1.5999999f,  1.7000000f,  1.8000000f,  1.9000001f,
                     2.5810654f,  -1.3221580f})
          .view({1, 1, 4, 8});
  RopeTables rope = MultiAxisRopeTables(Ids(), {2, 4, 2});
  EXPECT_TRUE(AllClose(ApplyRope(x, rope), expected, 1e-6));
}

TEST(RopeTest, HalfPrecisionInputKeepsItsDtype) {
  const torch::Tensor x = torch::randn({2, 3, 4, 8});
  RopeTables rope = MultiAxisRopeTables(Ids(), {2, 4, 2});
  torch::Tensor out = ApplyRope(x.to(torch::kBFloat16), rope);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  // bf16 has an 8-bit mantissa: rounding of the input and of the output, |x| < ~5.
  EXPECT_TRUE(AllClose(out, ApplyRope(x, rope), 0.05));
}

TEST(RopeTest, RejectsIdsThatDoNotMatchTheAxes) {
  EXPECT_THROW(MultiAxisRopeTables(torch::zeros({4, 2}), {2, 4, 2}), c10::Error);
  EXPECT_THROW(MultiAxisRopeTables(torch::zeros({4, 3}), {2, 3, 2}), c10::Error);
}

}  // namespace
}  // namespace tlcm
