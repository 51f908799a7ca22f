#include "models/layers/fused_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/layers/lora_batch.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

// Three layers of one input (widths 5, 3, 4): the fused product gives each the output it gives
// alone, per-sample style LoRA updates included, and their weights are held once.
TEST(FusedLinearTest, EachPartGetsItsOwnOutputAndLoraUpdate) {
  torch::manual_seed(0);
  LoadedLinear q(6, 5), k(6, 3), mlp(6, 4);
  testing::FillRandom(*q, 1);
  testing::FillRandom(*k, 2);
  testing::FillRandom(*mlp, 3);
  // Updates on q (rank 2) and mlp (rank 3); rows: none, q at 0.5, mlp at 2, both.
  LoraBatch batch;
  batch.updates[q.get()] = {torch::randn({2, 6}), torch::randn({5, 2}),
                            torch::tensor({{0.f, 0.f}, {.5f, .5f}, {0.f, 0.f}, {1.f, 1.f}})};
  batch.updates[mlp.get()] = {
      torch::randn({3, 6}), torch::randn({4, 3}),
      torch::tensor({{0.f, 0.f, 0.f}, {0.f, 0.f, 0.f}, {2.f, 2.f, 2.f}, {-1.f, -1.f, -1.f}})};
  const torch::Tensor x = torch::randn({4, 7, 6});
  torch::NoGradGuard no_grad;
  const ScopedLoraBatch scope(&batch);
  const std::vector<torch::Tensor> separate = {q(x), k(x), mlp(x)};

  const FusedLinear fused = FusedLinear::Fuse({q, k, mlp});
  const std::vector<torch::Tensor> out = fused.forward(x);
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].sizes(), separate[i].sizes()) << i;
    EXPECT_TRUE(testing::AllClose(out[i], separate[i], 1e-5)) << i;
  }
  // One storage: the layers' own weights and biases are rows of the fused tensors.
  EXPECT_TRUE(q->weight.is_alias_of(k->weight));
  EXPECT_TRUE(k->bias.is_alias_of(mlp->bias));
  EXPECT_TRUE(testing::AllClose(q(x), separate[0], 1e-5));  // the layers still work alone
}

TEST(FusedLinearTest, RefusesUseBeforeFuseAndAfterAMove) {
  LoadedLinear a(4, 2), b(4, 2);
  testing::FillRandom(*a, 1);
  testing::FillRandom(*b, 2);
  const torch::Tensor x = torch::randn({1, 4});
  torch::NoGradGuard no_grad;
  EXPECT_THROW(FusedLinear().forward(x), c10::Error);
  FusedLinear fused = FusedLinear::Fuse({a, b});
  EXPECT_EQ(fused.forward(x).size(), 2u);
  b->to(torch::kFloat64);  // b's weights are its own again
  b->to(torch::kFloat32);
  EXPECT_THROW(fused.forward(x), c10::Error);
  fused = FusedLinear::Fuse({a, b});
  EXPECT_TRUE(testing::AllClose(fused.forward(x)[1], b(x), 1e-6));
  LoadedLinear no_bias(4, 2, /*bias=*/false);
  testing::FillRandom(*no_bias, 3);
  EXPECT_THROW(FusedLinear::Fuse({a, no_bias}), c10::Error);
}

}  // namespace
}  // namespace tlcm
