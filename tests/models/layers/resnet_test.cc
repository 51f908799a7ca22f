#include "models/layers/resnet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_util.h"

namespace tlcm {
namespace {

TEST(Upsample2DTest, ExplicitDoubleSizeEqualsScaleTwo) {
  // The UNet always passes the skip connection's size; for even inputs that must be the same
  // as diffusers' scale_factor=2 path.
  torch::manual_seed(0);
  Upsample2D up(3, 5);
  testing::FillRandom(*up, /*seed=*/1);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 3, 4, 6});
  const torch::Tensor by_scale = up(x);
  const torch::Tensor by_size = up(x, std::vector<int64_t>{8, 12});
  EXPECT_EQ(by_scale.sizes(), (std::vector<int64_t>{2, 5, 8, 12}));
  EXPECT_TRUE(torch::equal(by_scale, by_size));
  EXPECT_EQ(up(x, std::vector<int64_t>{7, 11}).sizes(), (std::vector<int64_t>{2, 5, 7, 11}));
}

TEST(Downsample2DTest, HalvesRoundingUp) {
  Downsample2D down(3, 3);
  testing::FillRandom(*down, /*seed=*/2);
  torch::NoGradGuard no_grad;
  EXPECT_EQ(down(torch::randn({1, 3, 7, 5})).sizes(), (std::vector<int64_t>{1, 3, 4, 3}));
}

TEST(ResnetBlock2DTest, ShortcutOnlyWhenChannelsChange) {
  ResnetBlock2DOptions same{8, 8, 16, 4, 1e-5};
  ResnetBlock2DOptions wider{8, 12, 0, 4, 1e-6};
  auto names = [](const torch::nn::Module& m) {
    std::vector<std::string> out;
    for (const auto& p : m.named_parameters()) out.push_back(p.key());
    return out;
  };
  EXPECT_EQ(names(*ResnetBlock2D(same)),
            (std::vector<std::string>{"norm1.weight", "norm1.bias", "conv1.weight", "conv1.bias",
                                      "time_emb_proj.weight", "time_emb_proj.bias", "norm2.weight",
                                      "norm2.bias", "conv2.weight", "conv2.bias"}));
  EXPECT_EQ(names(*ResnetBlock2D(wider)),
            (std::vector<std::string>{"norm1.weight", "norm1.bias", "conv1.weight", "conv1.bias",
                                      "norm2.weight", "norm2.bias", "conv2.weight", "conv2.bias",
                                      "conv_shortcut.weight", "conv_shortcut.bias"}));
}

}  // namespace
}  // namespace tlcm
