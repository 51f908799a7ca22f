#include "loaders/lora.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loaders/safetensors.h"
#include "models/layers/loaded_layers.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

// A module tree with the shapes LoRA targets: blocks.0.to_q (Linear), blocks.0.conv1 (Conv2d),
// with random weights (the layers themselves leave them unset).
struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    to_q = register_module("to_q", LoadedLinear(6, 5));
    conv1 = register_module("conv1", LoadedConv2d(3, 4, 3, /*stride=*/1, /*padding=*/1));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({6})));
    testing::FillRandom(*this, /*seed=*/3);
  }
  LoadedLinear to_q{nullptr};
  LoadedConv2d conv1{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(Block);

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    blocks = register_module("blocks", torch::nn::ModuleList());
    blocks->push_back(Block());
  }
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(Tiny);

fs::path MakeAdapterDir(const std::string& name,
                        const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& config = "") {
  const fs::path dir = testing::FreshTempDir("lora_" + name);
  EXPECT_TRUE(WriteSafetensors((dir / "adapter_model.safetensors").string(), tensors).ok());
  if (!config.empty()) std::ofstream(dir / "adapter_config.json") << config;
  return dir;
}

TEST(LoraTest, FusesLinearAndConvWithTheGivenScale) {
  torch::manual_seed(0);
  const auto a_lin = torch::randn({64, 6}), b_lin = torch::randn({5, 64});
  const auto a_conv = torch::randn({64, 3, 3, 3}), b_conv = torch::randn({4, 64, 1, 1});
  const fs::path dir =
      MakeAdapterDir("fuse",
                     {{"base_model.model.blocks.0.to_q.lora_A.weight", a_lin},
                      {"base_model.model.blocks.0.to_q.lora_B.weight", b_lin},
                      {"base_model.model.blocks.0.conv1.lora_A.weight", a_conv},
                      {"base_model.model.blocks.0.conv1.lora_B.weight", b_conv}},
                     R"({"r": 64, "lora_alpha": 8, "target_modules": ["to_q", "conv1"]})");
  auto adapter = LoadLoraAdapter(dir.string());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  ASSERT_TRUE(adapter->config_scale.has_value());
  EXPECT_FLOAT_EQ(*adapter->config_scale, 0.125f);

  Tiny model;
  auto* block = model->blocks[0]->as<BlockImpl>();
  const auto w_lin = block->to_q->weight.clone(), w_conv = block->conv1->weight.clone();
  const torch::Tensor x = torch::randn({2, 3, 5, 5});
  // Reference: the unmerged LoRA forward that PEFT runs, conv_B(conv_A(x)) * scale.
  const torch::Tensor expected_conv =
      block->conv1->forward(x) +
      torch::conv2d(torch::conv2d(x, a_conv, {}, 1, 1), b_conv) * kTlcmLoraScale;
  ASSERT_TRUE(FuseLora(*model, *adapter, kTlcmLoraScale).ok());
  EXPECT_TRUE(testing::AllClose(block->to_q->weight,
                                w_lin + kTlcmLoraScale * torch::matmul(b_lin, a_lin), 1e-5));
  EXPECT_FALSE(torch::equal(block->conv1->weight, w_conv));
  EXPECT_TRUE(testing::AllClose(block->conv1->forward(x), expected_conv, 1e-4));
}

TEST(LoraTest, AcceptsDiffusersPrefixesAndBareKeys) {
  for (const std::string prefix : {"", "unet.", "transformer."}) {
    const fs::path dir = MakeAdapterDir(
        "prefix" + prefix, {{prefix + "blocks.0.to_q.lora_A.weight", torch::ones({2, 6})},
                            {prefix + "blocks.0.to_q.lora_B.weight", torch::ones({5, 2})}});
    auto adapter = LoadLoraAdapter((dir / "adapter_model.safetensors").string());
    ASSERT_TRUE(adapter.ok()) << adapter.status();
    EXPECT_EQ(adapter->modules.count("blocks.0.to_q"), 1u) << prefix;
    EXPECT_FALSE(adapter->config_scale.has_value());
    Tiny model;
    EXPECT_TRUE(FuseLora(*model, *adapter, 1.0f).ok());
  }
}

// kohya files: underscored module names, per-module alpha (scale alpha / r); PEFT files without
// a config: scale 1 (diffusers' lora_alpha = r).
TEST(LoraTest, MatchesKohyaNamesAndScalesByAlpha) {
  const fs::path dir = testing::FreshTempDir("lora_kohya");
  ASSERT_TRUE(
      WriteSafetensors((dir / "style.safetensors").string(),
                       {{"lora_unet_blocks_0_to_q.lora_down.weight", torch::ones({4, 6})},
                        {"lora_unet_blocks_0_to_q.lora_up.weight", torch::ones({5, 4})},
                        {"lora_unet_blocks_0_to_q.alpha", torch::tensor(2.0f)},
                        {"lora_unet_blocks_0_conv1.lora_down.weight", torch::ones({2, 3, 3, 3})},
                        {"lora_unet_blocks_0_conv1.lora_up.weight", torch::ones({4, 2, 1, 1})}})
          .ok());
  auto adapter = LoadLoraAdapter((dir / "style.safetensors").string());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  EXPECT_TRUE(adapter->underscored_names);
  Tiny model;
  auto targets = ResolveLoraTargets(*model, *adapter);
  ASSERT_TRUE(targets.ok()) << targets.status();
  ASSERT_EQ(targets->size(), 2u);
  for (const LoraTarget& target : *targets) {
    if (target.module == "blocks.0.to_q") {
      EXPECT_FALSE(target.conv);
      EXPECT_FLOAT_EQ(ModuleScale(*adapter, *target.pair), 0.5f);
    } else {
      EXPECT_EQ(target.module, "blocks.0.conv1");
      EXPECT_TRUE(target.conv);
      EXPECT_FLOAT_EQ(ModuleScale(*adapter, *target.pair), 1.0f);
    }
  }
  // diffusers' save_lora_weights file name inside a folder.
  const fs::path folder = testing::FreshTempDir("lora_diffusers_folder");
  ASSERT_TRUE(WriteSafetensors((folder / "pytorch_lora_weights.safetensors").string(),
                               {{"unet.blocks.0.to_q.lora_A.weight", torch::ones({2, 6})},
                                {"unet.blocks.0.to_q.lora_B.weight", torch::ones({5, 2})}})
                  .ok());
  auto diffusers = LoadLoraAdapter(folder.string());
  ASSERT_TRUE(diffusers.ok()) << diffusers.status();
  EXPECT_FLOAT_EQ(ModuleScale(*diffusers, diffusers->modules.at("blocks.0.to_q")), 1.0f);
  // Mixed layouts are refused.
  ASSERT_TRUE(WriteSafetensors((dir / "mixed.safetensors").string(),
                               {{"lora_unet_blocks_0_to_q.lora_down.weight", torch::ones({4, 6})},
                                {"blocks.0.to_q.lora_B.weight", torch::ones({5, 4})}})
                  .ok());
  auto mixed = LoadLoraAdapter((dir / "mixed.safetensors").string());
  EXPECT_NE(mixed.status().message().find("mixes kohya"), std::string::npos) << mixed.status();
}

TEST(LoraTest, ReadsTheTlcmSdxlConfigFileName) {
  const fs::path dir =
      MakeAdapterDir("sdxlname", {{"blocks.0.to_q.lora_A.weight", torch::ones({4, 6})},
                                  {"blocks.0.to_q.lora_B.weight", torch::ones({5, 4})}});
  std::ofstream(dir / "lora_model_adapter_config.json") << R"({"r": 4, "lora_alpha": 2})";
  auto adapter = LoadLoraAdapter(dir.string());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  EXPECT_FLOAT_EQ(adapter->config_scale.value(), 0.5f);
}

TEST(LoraTest, RejectsAdaptersThatDoNotFitAndLeavesTheModelUntouched) {
  struct Case {
    std::string name;
    std::map<std::string, torch::Tensor> tensors;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"unknown",
       {{"blocks.0.to_k.lora_A.weight", torch::ones({2, 6})},
        {"blocks.0.to_k.lora_B.weight", torch::ones({5, 2})}},
       "matches no module"},
      {"notlinear",
       {{"blocks.0.norm.lora_A.weight", torch::ones({2, 6})},
        {"blocks.0.norm.lora_B.weight", torch::ones({6, 2})}},
       "neither a Linear"},
      {"shape",
       {{"blocks.0.to_q.lora_A.weight", torch::ones({2, 7})},
        {"blocks.0.to_q.lora_B.weight", torch::ones({5, 2})}},
       "do not fit"},
  };
  for (const Case& c : cases) {
    // A valid module first: it must not be modified when a later module fails.
    auto tensors = c.tensors;
    tensors["blocks.0.conv1.lora_A.weight"] = torch::ones({2, 3, 3, 3});
    tensors["blocks.0.conv1.lora_B.weight"] = torch::ones({4, 2, 1, 1});
    auto adapter = LoadLoraAdapter(MakeAdapterDir(c.name, tensors).string());
    ASSERT_TRUE(adapter.ok()) << adapter.status();
    Tiny model;
    const auto before = model->blocks[0]->as<BlockImpl>()->conv1->weight.clone();
    const absl::Status status = FuseLora(*model, *adapter, 1.0f);
    ASSERT_FALSE(status.ok()) << c.name;
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status;
    EXPECT_NE(status.message().find("adapter_model.safetensors"), std::string::npos) << status;
    EXPECT_TRUE(torch::equal(model->blocks[0]->as<BlockImpl>()->conv1->weight, before));
  }
  auto half = LoadLoraAdapter(
      MakeAdapterDir("half", {{"blocks.0.to_q.lora_A.weight", torch::ones({2, 6})}}).string());
  EXPECT_NE(half.status().message().find("only one of"), std::string::npos) << half.status();
  auto stray = LoadLoraAdapter(
      MakeAdapterDir("stray", {{"blocks.0.to_q.weight", torch::ones({2})}}).string());
  EXPECT_NE(stray.status().message().find("'blocks.0.to_q.weight'"), std::string::npos)
      << stray.status();
}

}  // namespace
}  // namespace tlcm
