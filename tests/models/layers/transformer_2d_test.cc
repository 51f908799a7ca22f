#include "models/layers/transformer_2d.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_util.h"

namespace tlcm {
namespace {

Transformer2DOptions Options(bool linear) {
  Transformer2DOptions options;
  options.heads = 2;
  options.head_dim = 4;
  options.in_channels = 8;
  options.num_layers = 2;
  options.cross_attention_dim = 6;
  options.norm_num_groups = 2;
  options.use_linear_projection = linear;
  return options;
}

TEST(Transformer2DTest, ConvProjectionEqualsLinearProjection) {
  // A 1x1 convolution is a per-position linear map: with the same weights both forms agree.
  Transformer2DModel linear(Options(true));
  Transformer2DModel conv(Options(false));
  testing::FillRandom(*linear, /*seed=*/0);
  torch::NoGradGuard no_grad;
  auto conv_params = conv->named_parameters();
  for (const auto& item : linear->named_parameters()) {
    torch::Tensor target = conv_params[item.key()];
    target.copy_(item.value().reshape(target.sizes()));
  }
  EXPECT_EQ(conv_params["proj_in.weight"].sizes(), (std::vector<int64_t>{8, 8, 1, 1}));
  const torch::Tensor x = torch::randn({2, 8, 3, 5});
  const torch::Tensor context = torch::randn({2, 7, 6});
  const torch::Tensor out = linear(x, context);
  EXPECT_EQ(out.sizes(), x.sizes());
  EXPECT_TRUE(torch::allclose(conv(x, context), out, 1e-5, 1e-5));
}

TEST(Transformer2DTest, CheckpointNames) {
  Transformer2DModel model(Options(true));
  auto params = model->named_parameters();
  for (const char* name :
       {"norm.weight", "proj_in.weight", "proj_in.bias", "proj_out.weight",
        "transformer_blocks.1.norm1.weight", "transformer_blocks.1.attn1.to_q.weight",
        "transformer_blocks.1.attn2.to_k.weight", "transformer_blocks.1.attn2.to_out.0.bias",
        "transformer_blocks.1.norm3.bias", "transformer_blocks.1.ff.net.0.proj.weight",
        "transformer_blocks.1.ff.net.2.weight"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
  EXPECT_FALSE(params.contains("transformer_blocks.0.attn1.to_q.bias"));
  EXPECT_EQ(params["transformer_blocks.0.ff.net.0.proj.weight"].sizes(),
            (std::vector<int64_t>{64, 8}));  // GEGLU: 2 * (4 * dim)
  EXPECT_EQ(params["transformer_blocks.0.attn2.to_k.weight"].sizes(), (std::vector<int64_t>{8, 6}));
}

}  // namespace
}  // namespace tlcm
