#include "models/layers/loaded_layers.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_util.h"

namespace tlcm {
namespace {

// The Loaded* layers must compute exactly what LibTorch's layers compute with the same weights,
// under the same parameter names (the checkpoint keys).

std::vector<std::string> Names(const torch::nn::Module& module) {
  std::vector<std::string> names;
  for (const auto& item : module.named_parameters()) names.push_back(item.key());
  return names;
}

void CopyParameters(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto target = to.named_parameters();
  for (const auto& item : from.named_parameters()) target[item.key()].copy_(item.value());
}

TEST(LoadedLinearTest, MatchesTorchLinear) {
  for (const bool bias : {true, false}) {
    LoadedLinear loaded(6, 4, bias);
    torch::nn::Linear reference(torch::nn::LinearOptions(6, 4).bias(bias));
    EXPECT_EQ(Names(*loaded), Names(*reference));
    EXPECT_EQ(loaded->weight.sizes(), (std::vector<int64_t>{4, 6}));
    EXPECT_EQ(loaded->bias.defined(), bias);
    testing::FillRandom(*loaded, /*seed=*/1);
    CopyParameters(*loaded, *reference);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 3, 6});
    EXPECT_TRUE(torch::equal(loaded(x), reference(x))) << "bias " << bias;
  }
}

TEST(LoadedConv2dTest, MatchesTorchConv2d) {
  struct Case {
    int64_t kernel, stride, padding;
    bool bias;
  };
  for (const Case c : {Case{3, 1, 1, true}, Case{3, 2, 1, true}, Case{1, 1, 0, false}}) {
    LoadedConv2d loaded(3, 5, c.kernel, c.stride, c.padding, c.bias);
    torch::nn::Conv2d reference(
        torch::nn::Conv2dOptions(3, 5, c.kernel).stride(c.stride).padding(c.padding).bias(c.bias));
    EXPECT_EQ(Names(*loaded), Names(*reference));
    EXPECT_EQ(loaded->weight.sizes(), reference->weight.sizes());
    testing::FillRandom(*loaded, /*seed=*/2);
    CopyParameters(*loaded, *reference);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 3, 7, 6});
    EXPECT_TRUE(torch::allclose(loaded(x), reference(x), 1e-6, 1e-6))
        << "kernel " << c.kernel << " stride " << c.stride;
  }
}

TEST(LoadedEmbeddingTest, MatchesTorchEmbedding) {
  LoadedEmbedding loaded(10, 4);
  torch::nn::Embedding reference(10, 4);
  EXPECT_EQ(Names(*loaded), Names(*reference));
  testing::FillRandom(*loaded, /*seed=*/3);
  CopyParameters(*loaded, *reference);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::tensor({3, 0, 9, 3}, torch::kLong).view({2, 2});
  EXPECT_TRUE(torch::equal(loaded(ids), reference(ids)));
}

}  // namespace
}  // namespace tlcm
