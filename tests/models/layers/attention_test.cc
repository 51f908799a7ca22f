#include "models/layers/attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_util.h"

namespace tlcm {
namespace {

TEST(AttentionTest, SpatialInputAttendsOverPositionsWithResidual) {
  torch::manual_seed(0);
  AttentionOptions options;
  options.query_dim = 8;
  options.heads = 1;
  options.dim_head = 8;
  options.bias = true;
  options.norm_num_groups = 2;
  options.norm_eps = 1e-6;
  options.residual_connection = true;
  Attention attention(options);
  testing::FillRandom(*attention, /*seed=*/1);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 8, 3, 5});
  const torch::Tensor out = attention(x);
  ASSERT_EQ(out.sizes(), x.sizes());

  // By hand: tokens [B, 15, 8], GroupNorm over channels, softmax(q k^T / sqrt(8)) v, to_out.0.
  auto params = attention->named_parameters();
  auto linear = [&](const std::string& name, const torch::Tensor& t) {
    return torch::nn::functional::linear(t, params[name + ".weight"], params[name + ".bias"]);
  };
  const torch::Tensor normed =
      torch::group_norm(x, 2, params["group_norm.weight"], params["group_norm.bias"], 1e-6);
  const torch::Tensor tokens = normed.flatten(2).transpose(1, 2);
  const torch::Tensor q = linear("to_q", tokens), k = linear("to_k", tokens),
                      v = linear("to_v", tokens);
  const torch::Tensor probs =
      torch::softmax(torch::matmul(q, k.transpose(1, 2)) / std::sqrt(8.0), -1);
  const torch::Tensor expected =
      linear("to_out.0", torch::matmul(probs, v)).transpose(1, 2).reshape(x.sizes()) + x;
  EXPECT_TRUE(torch::allclose(out, expected, 1e-5, 1e-5));
}

TEST(AttentionTest, CrossAttentionProjectsTheContext) {
  AttentionOptions options;
  options.query_dim = 8;
  options.cross_attention_dim = 6;
  options.heads = 2;
  options.dim_head = 4;
  Attention attention(options);
  testing::FillRandom(*attention, /*seed=*/2);
  std::vector<std::string> names;
  for (const auto& p : attention->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"to_q.weight", "to_k.weight", "to_v.weight",
                                             "to_out.0.weight", "to_out.0.bias"}));
  EXPECT_EQ(attention->named_parameters()["to_k.weight"].sizes(), (std::vector<int64_t>{8, 6}));
  torch::NoGradGuard no_grad;
  EXPECT_EQ(attention(torch::randn({2, 5, 8}), torch::randn({2, 7, 6})).sizes(),
            (std::vector<int64_t>{2, 5, 8}));
}

}  // namespace
}  // namespace tlcm
