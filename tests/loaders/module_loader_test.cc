#include "loaders/module_loader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loaders/key_remap.h"
#include "loaders/lora.h"
#include "loaders/safetensors.h"
#include "models/layers/loaded_layers.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

// proj (LoadedLinear 4 -> 3) and a buffer, as a checkpoint would hold them.
struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    proj = register_module("proj", LoadedLinear(4, 3));
    scale = register_buffer("scale", torch::empty({5}));
  }
  LoadedLinear proj{nullptr};
  torch::Tensor scale;
};
TORCH_MODULE(Tiny);

// Writes `tensors` to a fresh safetensors file and opens it.
WeightStore Store(const std::map<std::string, torch::Tensor>& tensors) {
  const std::string path = testing::FreshTempPath("weights.safetensors");
  EXPECT_TRUE(WriteSafetensors(path, tensors).ok());
  auto store = WeightStore::OpenFile(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(*store);
}

std::map<std::string, torch::Tensor> RandomCheckpoint(torch::Dtype dtype) {
  torch::manual_seed(0);
  return {{"proj.weight", torch::randn({3, 4}).to(dtype)},
          {"proj.bias", torch::randn({3}).to(dtype)},
          {"scale", torch::rand({5}).to(dtype)}};
}

TEST(LoadModuleWeightsTest, WithoutPlacementKeepsTheParameterDtype) {
  const auto checkpoint = RandomCheckpoint(torch::kFloat16);
  Tiny model;
  ASSERT_TRUE(LoadModuleWeights(*model, Store(checkpoint), IdentityKeys()).ok());
  EXPECT_EQ(model->proj->weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(model->proj->weight, checkpoint.at("proj.weight").to(torch::kFloat32)));
}

TEST(LoadModuleWeightsTest, PlacementConvertsParametersAndBuffers) {
  const auto checkpoint = RandomCheckpoint(torch::kFloat32);
  Tiny model;
  ASSERT_TRUE(LoadModuleWeights(*model, Store(checkpoint), IdentityKeys(),
                                WeightPlacement{torch::kCPU, torch::kBFloat16})
                  .ok());
  EXPECT_EQ(model->proj->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(model->proj->bias.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(model->proj->weight, checkpoint.at("proj.weight").to(torch::kBFloat16)));
  EXPECT_EQ(model->scale.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(model->scale, checkpoint.at("scale").to(torch::kBFloat16)));
}

// Loading a float16 checkpoint straight into float16 and fusing LoRA there gives exactly the
// weights of the float32 route (load in float32, fuse, cast): FuseLora adds in float32 and rounds
// once either way, and float16 -> float32 is exact.
TEST(LoadModuleWeightsTest, HalfCheckpointFusedInHalfEqualsTheFloat32Route) {
  const auto checkpoint = RandomCheckpoint(torch::kFloat16);
  torch::manual_seed(1);
  LoraAdapter adapter;
  adapter.source = "test";
  adapter.modules["proj"] = {torch::randn({2, 4}), torch::randn({3, 2})};

  Tiny via_float32;
  ASSERT_TRUE(LoadModuleWeights(*via_float32, Store(checkpoint), IdentityKeys()).ok());
  ASSERT_TRUE(FuseLora(*via_float32, adapter, kTlcmLoraScale).ok());
  via_float32->to(torch::kFloat16);

  Tiny direct;
  ASSERT_TRUE(LoadModuleWeights(*direct, Store(checkpoint), IdentityKeys(),
                                WeightPlacement{torch::kCPU, torch::kFloat16})
                  .ok());
  ASSERT_TRUE(FuseLora(*direct, adapter, kTlcmLoraScale).ok());

  EXPECT_EQ(direct->proj->weight.scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(direct->proj->weight, via_float32->proj->weight));
  EXPECT_FALSE(torch::equal(direct->proj->weight, checkpoint.at("proj.weight")));  // fused
}

}  // namespace
}  // namespace tlcm
