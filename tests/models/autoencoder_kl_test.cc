#include "models/autoencoder_kl.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
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

absl::StatusOr<AutoencoderKLDecoder> BuildDecoder(const std::string& model_case) {
  TLCM_ASSIGN_OR_RETURN(
      auto config, AutoencoderKLConfig::FromFile(DataPath(model_case + "/model/vae/config.json")));
  return AutoencoderKLDecoder(config);
}

// Builds the decoder of tests/data/<model_case>/model/vae and loads its weights.
absl::StatusOr<AutoencoderKLDecoder> LoadDecoder(const std::string& model_case) {
  TLCM_ASSIGN_OR_RETURN(AutoencoderKLDecoder vae, BuildDecoder(model_case));
  TLCM_ASSIGN_OR_RETURN(auto weights,
                        WeightStore::OpenComponent(DataPath(model_case + "/model/vae")));
  TLCM_RETURN_IF_ERROR(LoadModuleWeights(*vae, weights, VaeDecoderKeys()));
  vae->eval();
  return vae;
}

class VaeGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VaeGoldenTest, MatchesDiffusers) {
  auto built = LoadDecoder(GetParam());
  ASSERT_TRUE(built.ok()) << built.status();
  AutoencoderKLDecoder vae = *built;
  auto golden = LoadGolden(GetParam() + "/golden/vae.safetensors");
  torch::NoGradGuard no_grad;
  const torch::Tensor image = vae(golden.at("latents"));
  const double diff = (image - golden.at("image")).abs().max().item<double>();
  RecordProperty("max_abs_diff", absl::StrFormat("%.3g", diff));
  RecordProperty("max_abs_expected",
                 absl::StrFormat("%.3g", golden.at("image").abs().max().item<double>()));
  EXPECT_TRUE(AllClose(image, golden.at("image"), kGoldenAtol, kGoldenRtol));
}

INSTANTIATE_TEST_SUITE_P(Cases, VaeGoldenTest,
                         ::testing::Values("sdxl-tiny", "sdxl-rich", "flux-tiny", "flux-rich"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

class VaeEncoderGoldenTest : public ::testing::TestWithParam<std::string> {};

// The encoder's moments (mean, log-variance) against AutoencoderKL.encode's latent_dist
// parameters (tests/data/<case>/golden/vae_encoder.safetensors).
TEST_P(VaeEncoderGoldenTest, MatchesDiffusers) {
  auto config = AutoencoderKLConfig::FromFile(DataPath(GetParam() + "/model/vae/config.json"));
  ASSERT_TRUE(config.ok()) << config.status();
  AutoencoderKLEncoder vae(*config);
  auto weights = WeightStore::OpenComponent(DataPath(GetParam() + "/model/vae"));
  ASSERT_TRUE(weights.ok()) << weights.status();
  ASSERT_TRUE(LoadModuleWeights(*vae, *weights, VaeEncoderKeys()).ok());
  vae->eval();
  auto golden = LoadGolden(GetParam() + "/golden/vae_encoder.safetensors");
  torch::NoGradGuard no_grad;
  const torch::Tensor moments = vae(golden.at("image"));
  RecordProperty(
      "max_abs_diff",
      absl::StrFormat("%.3g", (moments - golden.at("moments")).abs().max().item<double>()));
  EXPECT_TRUE(AllClose(moments, golden.at("moments"), kGoldenAtol, kGoldenRtol));
  // Sampling: the mean plus exp(logvar / 2) * noise; the mode without noise.
  const torch::Tensor noise =
      torch::randn({moments.size(0), moments.size(1) / 2, moments.size(2), moments.size(3)});
  const auto halves = moments.chunk(2, 1);
  EXPECT_TRUE(torch::equal(LatentFromMoments(moments, torch::Tensor()), halves[0]));
  EXPECT_TRUE(torch::allclose(LatentFromMoments(moments, noise),
                              halves[0] + torch::exp(0.5 * halves[1].clamp(-30, 20)) * noise));
}

INSTANTIATE_TEST_SUITE_P(Cases, VaeEncoderGoldenTest,
                         ::testing::Values("sdxl-tiny", "flux-tiny", "flux-rich"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(VaeConfigTest, ReadsScalingAndShift) {
  auto sdxl = AutoencoderKLConfig::FromFile(DataPath("sdxl-tiny/model/vae/config.json"));
  ASSERT_TRUE(sdxl.ok()) << sdxl.status();
  EXPECT_DOUBLE_EQ(sdxl->scaling_factor, 0.13025);
  EXPECT_FALSE(sdxl->shift_factor.has_value());
  EXPECT_TRUE(sdxl->force_upcast);
  EXPECT_TRUE(sdxl->use_post_quant_conv);
  auto flux = AutoencoderKLConfig::FromFile(DataPath("flux-rich/model/vae/config.json"));
  ASSERT_TRUE(flux.ok()) << flux.status();
  EXPECT_DOUBLE_EQ(flux->scaling_factor, 0.3611);
  ASSERT_TRUE(flux->shift_factor.has_value());
  EXPECT_DOUBLE_EQ(*flux->shift_factor, 0.1159);
  EXPECT_FALSE(flux->use_post_quant_conv);
}

TEST(VaeConfigTest, RejectsOtherBlocksNamingFileAndKey) {
  std::ifstream in(DataPath("sdxl-tiny/model/vae/config.json"));
  auto json = nlohmann::json::parse(in);
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"up_block_types", {"UpDecoderBlock2D", "AttnUpDecoderBlock2D"}},
           {"act_fn", "gelu"},
           {"latents_mean", {0.0, 0.0, 0.0, 0.0}}}) {
    auto changed = json;
    changed[key] = value;
    const std::string path = testing::FreshTempPath("reject.json");
    std::ofstream(path) << changed.dump();
    auto config = AutoencoderKLConfig::FromFile(path);
    ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_TRUE(absl::StrContains(config.status().message(), path)) << config.status();
    EXPECT_TRUE(absl::StrContains(config.status().message(), key)) << config.status();
    fs::remove(path);
  }
}

TEST(VaeLoadTest, DropsEncoderAndMapsLegacyAttentionNames) {
  // Rewrites sdxl-tiny's VAE with the pre-0.14 attention names (query/key/value/proj_attn);
  // loading it must give the same decoder output.
  const std::string source = DataPath("sdxl-tiny/model/vae");
  auto weights = WeightStore::OpenComponent(source);
  ASSERT_TRUE(weights.ok()) << weights.status();
  std::map<std::string, torch::Tensor> legacy;
  bool has_encoder = false;
  for (const std::string& key : weights->Keys()) {
    has_encoder = has_encoder || absl::StartsWith(key, "encoder.");
    const std::string renamed = absl::StrReplaceAll(key, {{".to_q.", ".query."},
                                                          {".to_k.", ".key."},
                                                          {".to_v.", ".value."},
                                                          {".to_out.0.", ".proj_attn."}});
    legacy[renamed] = weights->Get(key).value();
  }
  EXPECT_TRUE(has_encoder);
  ASSERT_TRUE(legacy.count("decoder.mid_block.attentions.0.query.weight"));
  const std::string path = testing::FreshTempPath("legacy.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, legacy).ok());
  auto legacy_weights = WeightStore::OpenFile(path);
  ASSERT_TRUE(legacy_weights.ok()) << legacy_weights.status();
  auto built = BuildDecoder("sdxl-tiny");
  ASSERT_TRUE(built.ok()) << built.status();
  AutoencoderKLDecoder vae = *built;
  ASSERT_TRUE(LoadModuleWeights(*vae, *legacy_weights, VaeDecoderKeys()).ok());
  auto golden = LoadGolden("sdxl-tiny/golden/vae.safetensors");
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(AllClose(vae(golden.at("latents")), golden.at("image"), kGoldenAtol, kGoldenRtol));
  fs::remove(path);
}

TEST(VaeLoadTest, MissingDecoderWeightIsNamed) {
  auto weights = WeightStore::OpenComponent(DataPath("flux-tiny/model/vae"));
  ASSERT_TRUE(weights.ok()) << weights.status();
  std::map<std::string, torch::Tensor> tensors;
  for (const std::string& key : weights->Keys()) tensors[key] = weights->Get(key).value();
  tensors.erase("decoder.conv_out.bias");
  const std::string path = testing::FreshTempPath("missing.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  auto partial = WeightStore::OpenFile(path);
  ASSERT_TRUE(partial.ok()) << partial.status();
  auto built = BuildDecoder("flux-tiny");
  ASSERT_TRUE(built.ok()) << built.status();
  AutoencoderKLDecoder vae = *built;
  const absl::Status status = LoadModuleWeights(*vae, *partial, VaeDecoderKeys());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "1 missing: decoder.conv_out.bias")) << status;
  fs::remove(path);
}

class VaeHalfPrecisionTest : public ::testing::TestWithParam<::tlcm::testing::HalfPrecisionTarget> {
};

TEST_P(VaeHalfPrecisionTest, StaysCloseToFloat32) {
  const auto target = GetParam();
  auto built = LoadDecoder("sdxl-rich");
  ASSERT_TRUE(built.ok()) << built.status();
  AutoencoderKLDecoder vae = *built;
  auto golden = LoadGolden("sdxl-rich/golden/vae.safetensors");
  torch::NoGradGuard no_grad;
  vae->to(target.device, target.dtype);
  const torch::Tensor image = vae(golden.at("latents").to(target.device));
  EXPECT_EQ(image.scalar_type(), target.dtype);
  EXPECT_TRUE(::tlcm::testing::HalfClose(image, golden.at("image"),
                                         ::tlcm::testing::VaeTolerance(target.dtype)));
}

INSTANTIATE_TEST_SUITE_P(Targets, VaeHalfPrecisionTest,
                         ::testing::ValuesIn(::tlcm::testing::HalfPrecisionTargets()),
                         [](const auto& info) { return ::tlcm::testing::TargetName(info.param); });

}  // namespace
}  // namespace tlcm
