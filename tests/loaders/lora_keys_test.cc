#include "loaders/lora_keys.h"

#include <gtest/gtest.h>

namespace tlcm {
namespace {

using Role = LoraKey::Role;

struct Expected {
  std::string key;
  std::string module;
  Role role;
  bool underscored;
};

TEST(LoraKeysTest, ReadsEveryLayout) {
  const std::vector<Expected> cases = {
      {"base_model.model.down_blocks.1.attn1.to_q.lora_A.weight", "down_blocks.1.attn1.to_q",
       Role::kDown, false},
      {"base_model.model.x_embedder.lora_B.default.weight", "x_embedder", Role::kUp, false},
      {"unet.mid_block.resnets.0.conv1.lora_A.weight", "mid_block.resnets.0.conv1", Role::kDown,
       false},
      {"transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight",
       "single_transformer_blocks.0.proj_mlp", Role::kUp, false},
      {"transformer.x_embedder.alpha", "x_embedder", Role::kAlpha, false},
      {"unet.up_blocks.0.resnets.1.conv2.lora.down.weight", "up_blocks.0.resnets.1.conv2",
       Role::kDown, false},
      {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight",
       "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0", Role::kUp, false},
      {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.down.weight",
       "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", Role::kDown, false},
      {"unet.time_embedding.linear_1.lora_linear_layer.up.weight", "time_embedding.linear_1",
       Role::kUp, false},
      {"lora_unet_down_blocks_1_attentions_0_proj_in.lora_down.weight",
       "down_blocks_1_attentions_0_proj_in", Role::kDown, true},
      {"lora_unet_mid_block_resnets_0_conv1.lora_up.weight", "mid_block_resnets_0_conv1", Role::kUp,
       true},
      {"lora_unet_mid_block_resnets_0_conv1.alpha", "mid_block_resnets_0_conv1", Role::kAlpha,
       true},
      {"lora_transformer_x_embedder.lora_down.weight", "x_embedder", Role::kDown, true},
  };
  for (const Expected& c : cases) {
    auto parsed = ParseLoraKey(c.key);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ASSERT_TRUE(parsed->has_value()) << c.key;
    EXPECT_EQ((*parsed)->module, c.module) << c.key;
    EXPECT_EQ((*parsed)->role, c.role) << c.key;
    EXPECT_EQ((*parsed)->underscored, c.underscored) << c.key;
  }
}

TEST(LoraKeysTest, OtherKeysAreNoLoraTensors) {
  for (const std::string key : {"down_blocks.0.conv1.weight", "x_embedder.bias", "lora_A"}) {
    auto parsed = ParseLoraKey(key);
    ASSERT_TRUE(parsed.ok()) << key;
    EXPECT_FALSE(parsed->has_value()) << key;
  }
}

TEST(LoraKeysTest, RefusesTextEncoderKeysByName) {
  for (const std::string key :
       {"text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight",
        "text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora_B.weight",
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
        "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha"}) {
    auto parsed = ParseLoraKey(key);
    ASSERT_FALSE(parsed.ok()) << key;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(key), std::string::npos) << parsed.status();
    EXPECT_NE(parsed.status().message().find("text encoder"), std::string::npos);
  }
}

}  // namespace
}  // namespace tlcm
