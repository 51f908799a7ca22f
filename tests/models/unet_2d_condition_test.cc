#include "models/unet_2d_condition.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "loaders/key_remap.h"
#include "loaders/module_loader.h"
#include "loaders/weight_store.h"
#include "tests/models/half_precision_targets.h"
#include "tests/test_util.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;
using ::tlcm::testing::AllClose;
using ::tlcm::testing::DataPath;
using ::tlcm::testing::LoadGolden;

// fp32 golden tolerance: max |diff| <= 1e-6 + 1e-4 * max |expected|.
constexpr double kGoldenAtol = 1e-6;
constexpr double kGoldenRtol = 1e-4;

// Builds the UNet of tests/data/<model_case>/model/unet and loads its (possibly sharded) weights.
absl::StatusOr<UNet2DConditionModel> LoadUNet(const std::string& model_case) {
  const std::string dir = DataPath(model_case + "/model/unet");
  TLCM_ASSIGN_OR_RETURN(auto config, UNet2DConditionConfig::FromFile(dir + "/config.json"));
  UNet2DConditionModel unet(config);
  TLCM_ASSIGN_OR_RETURN(auto weights, WeightStore::OpenComponent(dir));
  TLCM_RETURN_IF_ERROR(LoadModuleWeights(*unet, weights, IdentityKeys()));
  unet->eval();
  return unet;
}

torch::Tensor RunGolden(UNet2DConditionModel& unet, std::map<std::string, torch::Tensor>& g) {
  torch::NoGradGuard no_grad;
  return unet(g.at("sample"), g.at("timestep"), g.at("encoder_hidden_states"), g.at("text_embeds"),
              g.at("time_ids"));
}

class UNetGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(UNetGoldenTest, MatchesDiffusers) {
  auto loaded = LoadUNet(GetParam());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  UNet2DConditionModel unet = *loaded;
  auto golden = LoadGolden(GetParam() + "/golden/unet.safetensors");
  torch::Tensor out = RunGolden(unet, golden);
  const double diff = (out - golden.at("out")).abs().max().item<double>();
  RecordProperty("max_abs_diff", absl::StrFormat("%.3g", diff));
  RecordProperty("max_abs_expected",
                 absl::StrFormat("%.3g", golden.at("out").abs().max().item<double>()));
  EXPECT_TRUE(AllClose(out, golden.at("out"), kGoldenAtol, kGoldenRtol));
}

INSTANTIATE_TEST_SUITE_P(Cases, UNetGoldenTest, ::testing::Values("sdxl-tiny", "sdxl-rich"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(UNetTest, EachSampleUsesItsOwnTimestep) {
  auto loaded = LoadUNet("sdxl-tiny");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  UNet2DConditionModel unet = *loaded;
  auto g = LoadGolden("sdxl-tiny/golden/unet.safetensors");
  torch::NoGradGuard no_grad;
  const torch::Tensor batch = RunGolden(unet, g);
  for (int64_t i = 0; i < 2; ++i) {
    auto row = [&](const char* key) { return g.at(key).slice(0, i, i + 1); };
    // A 0-d integer timestep is broadcast over the (single-sample) batch.
    const torch::Tensor t = g.at("timestep")[i].to(torch::kLong);
    const torch::Tensor alone =
        unet(row("sample"), t, row("encoder_hidden_states"), row("text_embeds"), row("time_ids"));
    EXPECT_TRUE(AllClose(alone, batch.slice(0, i, i + 1), 1e-5, 1e-5)) << "sample " << i;
  }
}

TEST(UNetTest, OddLatentSizesKeepTheirShape) {
  // sdxl-rich downsamples twice: 7 x 5 goes 7 -> 4 -> 2 and must come back as 4 -> 7.
  auto loaded = LoadUNet("sdxl-rich");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  UNet2DConditionModel unet = *loaded;
  auto g = LoadGolden("sdxl-rich/golden/unet.safetensors");
  torch::NoGradGuard no_grad;
  const torch::Tensor sample = torch::randn({2, 4, 7, 5});
  const torch::Tensor out = unet(sample, g.at("timestep"), g.at("encoder_hidden_states"),
                                 g.at("text_embeds"), g.at("time_ids"));
  EXPECT_EQ(out.sizes(), sample.sizes());
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
}

class UNetHalfPrecisionTest
    : public ::testing::TestWithParam<::tlcm::testing::HalfPrecisionTarget> {};

TEST_P(UNetHalfPrecisionTest, StaysCloseToFloat32) {
  const auto target = GetParam();
  auto loaded = LoadUNet("sdxl-rich");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  UNet2DConditionModel unet = *loaded;
  auto g = LoadGolden("sdxl-rich/golden/unet.safetensors");
  torch::NoGradGuard no_grad;
  unet->to(target.device, target.dtype);
  auto in = [&](const char* key) { return g.at(key).to(target.device); };
  const torch::Tensor out = unet(in("sample"), in("timestep"), in("encoder_hidden_states"),
                                 in("text_embeds"), in("time_ids"));
  EXPECT_EQ(out.scalar_type(), target.dtype);
  EXPECT_TRUE(
      ::tlcm::testing::HalfClose(out, g.at("out"), ::tlcm::testing::UNetTolerance(target.dtype)));
}

INSTANTIATE_TEST_SUITE_P(Targets, UNetHalfPrecisionTest,
                         ::testing::ValuesIn(::tlcm::testing::HalfPrecisionTargets()),
                         [](const auto& info) { return ::tlcm::testing::TargetName(info.param); });

TEST(UNetTest, WeightMismatchNamesTheKeys) {
  const std::string dir = DataPath("sdxl-tiny/model/unet");
  auto config = UNet2DConditionConfig::FromFile(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  UNet2DConditionModel unet(*config);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& item : unet->named_parameters()) tensors[item.key()] = item.value().detach();
  tensors.erase("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight");
  tensors["down_blocks.0.attentions.0.proj_in.weight"] = torch::zeros({8, 8});
  tensors["up_blocks.0.resnets.0.conv1.weight"] = torch::zeros({16, 3, 3, 3});
  const std::string path = testing::FreshTempPath("mismatch.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  auto weights = WeightStore::OpenFile(path);
  ASSERT_TRUE(weights.ok()) << weights.status();
  const absl::Status status = LoadModuleWeights(*unet, *weights, IdentityKeys());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(
      message.find("1 missing: mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"),
      std::string::npos)
      << message;
  // DownBlock2D has no attentions: the key is unexpected.
  EXPECT_NE(message.find("1 unexpected: down_blocks.0.attentions.0.proj_in.weight"),
            std::string::npos)
      << message;
  EXPECT_NE(
      message.find("1 mis-shaped: up_blocks.0.resnets.0.conv1.weight (file [16, 3, 3, 3], model ["),
      std::string::npos)
      << message;
  fs::remove(path);
}

// The unet/config.json of stabilityai/stable-diffusion-xl-base-1.0.
constexpr char kSdxlBaseConfig[] = R"({
  "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.19.0.dev0", "act_fn": "silu",
  "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
  "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
  "block_out_channels": [320, 640, 1280], "center_input_sample": false, "class_embed_type": null,
  "class_embeddings_concat": false, "conv_in_kernel": 3, "conv_out_kernel": 3,
  "cross_attention_dim": 2048, "cross_attention_norm": null,
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "downsample_padding": 1, "dual_cross_attention": false, "encoder_hid_dim": null,
  "encoder_hid_dim_type": null, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
  "layers_per_block": 2, "mid_block_only_cross_attention": null, "mid_block_scale_factor": 1,
  "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
  "num_attention_heads": null, "num_class_embeds": null, "only_cross_attention": false,
  "out_channels": 4, "projection_class_embeddings_input_dim": 2816, "resnet_out_scale_factor": 1.0,
  "resnet_skip_time_act": false, "resnet_time_scale_shift": "default", "sample_size": 128,
  "time_cond_proj_dim": null, "time_embedding_act_fn": null, "time_embedding_dim": null,
  "time_embedding_type": "positional", "timestep_post_act": null,
  "transformer_layers_per_block": [1, 2, 10],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
  "upcast_attention": null, "use_linear_projection": true
})";

std::string WriteConfig(const std::string& name, const nlohmann::json& json) {
  const std::string path = testing::FreshTempPath(name);
  std::ofstream(path) << json.dump();
  return path;
}

TEST(UNetConfigTest, ParsesSdxlBase) {
  const std::string path = WriteConfig("sdxl.json", nlohmann::json::parse(kSdxlBaseConfig));
  auto config = UNet2DConditionConfig::FromFile(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->num_attention_heads, (std::vector<int64_t>{5, 10, 20}));
  EXPECT_EQ(config->cross_attention_dim, (std::vector<int64_t>{2048, 2048, 2048}));
  EXPECT_EQ(config->layers_per_block, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(config->down_transformer_layers,
            (std::vector<std::vector<int64_t>>{{1, 1}, {2, 2}, {10, 10}}));
  EXPECT_EQ(config->up_transformer_layers,
            (std::vector<std::vector<int64_t>>{{10, 10, 10}, {2, 2, 2}, {1, 1, 1}}));
  EXPECT_EQ(config->mid_transformer_layers, (std::vector<int64_t>{10}));
  EXPECT_EQ(config->time_embed_dim, 1280);
  EXPECT_EQ(config->addition_time_embed_dim, 256);
  EXPECT_EQ(config->projection_class_embeddings_input_dim, 2816);
  EXPECT_TRUE(config->use_linear_projection);
  EXPECT_FALSE(config->upcast_attention);
  fs::remove(path);
}

TEST(UNetConfigTest, ReadsAsymmetricTransformerLayers) {
  auto json = nlohmann::json::parse(kSdxlBaseConfig);
  json["transformer_layers_per_block"] = {1, {2, 3}, {4, 5}};
  json["reverse_transformer_layers_per_block"] = {{6, 7, 8}, {2, 2, 2}, 1};
  const std::string path = WriteConfig("asymmetric.json", json);
  auto config = UNet2DConditionConfig::FromFile(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->down_transformer_layers,
            (std::vector<std::vector<int64_t>>{{1, 1}, {2, 3}, {4, 5}}));
  EXPECT_EQ(config->mid_transformer_layers, (std::vector<int64_t>{4}));
  EXPECT_EQ(config->up_transformer_layers,
            (std::vector<std::vector<int64_t>>{{6, 7, 8}, {2, 2, 2}, {1, 1, 1}}));
  json.erase("reverse_transformer_layers_per_block");
  const std::string no_reverse = WriteConfig("asymmetric_no_reverse.json", json);
  auto rejected = UNet2DConditionConfig::FromFile(no_reverse);
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rejected.status().message().find("reverse_transformer_layers_per_block"),
            std::string::npos);
  fs::remove(path);
  fs::remove(no_reverse);
}

struct Rejected {
  const char* key;
  nlohmann::json value;
};

class UNetConfigRejectTest : public ::testing::TestWithParam<Rejected> {};

TEST_P(UNetConfigRejectTest, NamesFileAndKey) {
  auto json = nlohmann::json::parse(kSdxlBaseConfig);
  json[GetParam().key] = GetParam().value;
  const std::string path = WriteConfig("reject.json", json);
  auto config = UNet2DConditionConfig::FromFile(path);
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find(GetParam().key), std::string::npos) << message;
  fs::remove(path);
}

INSTANTIATE_TEST_SUITE_P(
    Options, UNetConfigRejectTest,
    ::testing::Values(
        Rejected{"class_embed_type", "timestep"}, Rejected{"num_class_embeds", 10},
        Rejected{"time_cond_proj_dim", 256}, Rejected{"addition_embed_type", "text"},
        Rejected{"addition_embed_type", nullptr}, Rejected{"encoder_hid_dim_type", "text_proj"},
        Rejected{"only_cross_attention", true}, Rejected{"resnet_time_scale_shift", "scale_shift"},
        Rejected{"time_embedding_type", "fourier"},
        Rejected{"down_block_types", {"AttnDownBlock2D", "DownBlock2D", "DownBlock2D"}},
        Rejected{"up_block_types", {"UpBlock2D"}}, Rejected{"attention_head_dim", {5, 10}},
        Rejected{"norm_num_groups", 7}, Rejected{"mid_block_type", nullptr}),
    [](const auto& info) {
      return std::string(info.param.key) + "_" + std::to_string(info.index);
    });

}  // namespace
}  // namespace tlcm
