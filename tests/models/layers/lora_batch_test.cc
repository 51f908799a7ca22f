#include "models/layers/lora_batch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/layers/loaded_layers.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

// Row r of a batch with per-row scales gets exactly W + s_r B A of its own, for Linear and Conv2d.
TEST(LoraBatchTest, EachRowGetsItsOwnLowRankUpdate) {
  torch::manual_seed(0);
  LoadedLinear linear(6, 5);
  LoadedConv2d conv(3, 4, 3, /*stride=*/2, /*padding=*/1);
  testing::FillRandom(*linear, 1);
  testing::FillRandom(*conv, 2);
  // Two adapters stacked: ranks 2 and 3.
  const torch::Tensor a_lin = torch::randn({5, 6}), b_lin = torch::randn({5, 5});
  const torch::Tensor a_conv = torch::randn({5, 3, 3, 3}), b_conv = torch::randn({4, 5, 1, 1});
  // Rows: no adapter, the first at 0.5, the second at 2, both (1 and -1).
  const torch::Tensor scales = torch::tensor({{0.f, 0.f, 0.f, 0.f, 0.f},
                                              {.5f, .5f, 0.f, 0.f, 0.f},
                                              {0.f, 0.f, 2.f, 2.f, 2.f},
                                              {1.f, 1.f, -1.f, -1.f, -1.f}});
  LoraBatch batch;
  batch.updates[linear.get()] = {a_lin, b_lin, scales};
  batch.updates[conv.get()] = {a_conv, b_conv, scales};
  const torch::Tensor x = torch::randn({4, 7, 6});
  const torch::Tensor image = torch::randn({4, 3, 9, 9});
  torch::NoGradGuard no_grad;
  torch::Tensor y, z;
  {
    const ScopedLoraBatch scope(&batch);
    y = linear->forward(x);
    z = conv->forward(image);
  }
  EXPECT_EQ(CurrentLoraUpdate(linear.get()), nullptr);  // the scope has ended
  for (int64_t r = 0; r < 4; ++r) {
    const torch::Tensor s = scales[r];
    const torch::Tensor w_lin = linear->weight + torch::matmul(b_lin * s, a_lin);
    const torch::Tensor w_conv =
        conv->weight + torch::matmul(b_conv.flatten(1) * s, a_conv.flatten(1)).view({4, 3, 3, 3});
    EXPECT_TRUE(testing::AllClose(y[r], torch::linear(x[r], w_lin, linear->bias), 1e-5)) << r;
    EXPECT_TRUE(testing::AllClose(
        z[r], torch::conv2d(image[r].unsqueeze(0), w_conv, conv->bias, 2, 1)[0], 1e-4))
        << r;
  }
}

TEST(LoraBatchTest, LayersWithoutAnUpdateAndScopesNest) {
  LoadedLinear linear(2, 2), other(2, 2);
  testing::FillRandom(*linear, 1);
  testing::FillRandom(*other, 1);
  LoraBatch outer, inner;
  outer.updates[linear.get()] = {torch::ones({1, 2}), torch::ones({2, 1}), torch::ones({1, 1})};
  const torch::Tensor x = torch::ones({1, 2});
  torch::NoGradGuard no_grad;
  const ScopedLoraBatch outer_scope(&outer);
  EXPECT_FALSE(torch::equal(linear->forward(x), other->forward(x)));
  {
    const ScopedLoraBatch inner_scope(&inner);
    EXPECT_TRUE(torch::equal(linear->forward(x), other->forward(x)));
  }
  EXPECT_NE(CurrentLoraUpdate(linear.get()), nullptr);
  EXPECT_EQ(CurrentLoraUpdate(other.get()), nullptr);
}

TEST(LoraBatchTest, RowCountMismatchThrows) {
  LoadedLinear linear(2, 2);
  testing::FillRandom(*linear, 1);
  LoraBatch batch;
  batch.updates[linear.get()] = {torch::ones({1, 2}), torch::ones({2, 1}), torch::ones({3, 1})};
  const ScopedLoraBatch scope(&batch);
  torch::NoGradGuard no_grad;
  EXPECT_THROW(linear->forward(torch::ones({2, 2})), c10::Error);
}

}  // namespace
}  // namespace tlcm
