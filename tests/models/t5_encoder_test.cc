#include "models/t5_encoder.h"

#include <limits>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loaders/key_remap.h"
#include "loaders/module_loader.h"
#include "loaders/weight_store.h"
#include "tests/models/text_encoder_test_util.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

using testing::AllClose;
using testing::DataPath;
using testing::FreshTempDir;
using testing::LoadGolden;
using testing::MaxAbsDiff;
using testing::StateDict;
using testing::WriteJson;

struct BucketTable {
  int64_t num_buckets;
  int64_t max_distance;
  std::vector<int64_t> buckets;  // for relative positions -150 .. 150
};

// transformers 4.39.3 T5Attention._relative_position_bucket(torch.arange(-150, 151),
// bidirectional=True, num_buckets, max_distance) on CPU.
const std::vector<BucketTable>& TransformersBuckets() {
  static const auto* tables = new std::vector<BucketTable>{
      {32,
       128,
       {
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 14, 14, 14, 14,
           14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 13,
           13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 12, 12, 12, 12, 12,
           12, 12, 12, 12, 12, 12, 12, 12, 12, 11, 11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10,
           10, 10, 10, 9,  9,  9,  9,  8,  8,  8,  8,  7,  6,  5,  4,  3,  2,  1,  0,  17, 18, 19,
           20, 21, 22, 23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 26, 26, 26, 27, 27, 27,
           27, 27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 29, 29,
           29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30,
           30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
       }},
      {8,
       128,
       {
           3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
           3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
           3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
           3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
           3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2,
           2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 0, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7,
           7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
           7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
           7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
           7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
           7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
       }},
      {16,
       20,
       {
           7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
           7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
           7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
           7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
           7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
           7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
           7,  7,  7,  7,  7,  6,  6,  6,  6,  6,  5,  5,  5,  4,  4,  3,  2,  1,  0,  9,  10, 11,
           12, 12, 13, 13, 13, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
       }},
      {32,
       20,
       {
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
           15, 14, 14, 13, 12, 12, 11, 10, 9,  9,  8,  7,  6,  5,  4,  3,  2,  1,  0,  17, 18, 19,
           20, 21, 22, 23, 24, 25, 25, 26, 27, 28, 28, 29, 30, 30, 31, 31, 31, 31, 31, 31, 31, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
           31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
       }},
  };
  return *tables;
}

TEST(T5RelativePositionBucketTest, MatchesTransformers) {
  torch::Tensor relative = torch::arange(-150, 151, torch::kLong);
  for (const BucketTable& table : TransformersBuckets()) {
    torch::Tensor got = T5RelativePositionBucket(relative, table.num_buckets, table.max_distance);
    ASSERT_EQ(got.scalar_type(), torch::kLong);
    ASSERT_EQ(got.numel(), static_cast<int64_t>(table.buckets.size()));
    for (int64_t i = 0; i < got.numel(); ++i) {
      EXPECT_EQ(got[i].item<int64_t>(), table.buckets[i])
          << "num_buckets " << table.num_buckets << ", max_distance " << table.max_distance
          << ", relative position " << i - 150;
    }
  }
}

// Builds and loads the T5 encoder of a golden case's component folder.
T5EncoderModel LoadComponent(const std::string& dir) {
  auto config = T5Config::FromFile(dir + "/config.json");
  EXPECT_TRUE(config.ok()) << config.status();
  T5EncoderModel model(*config);
  auto store = WeightStore::OpenComponent(dir);
  EXPECT_TRUE(store.ok()) << store.status();
  absl::Status loaded = LoadModuleWeights(*model, *store, T5EncoderKeys());
  EXPECT_TRUE(loaded.ok()) << loaded;
  model->eval();
  return model;
}

class T5GoldenTest : public ::testing::TestWithParam<std::string> {};

// fp32 against transformers' fp32 T5EncoderModel (tools/make_goldens.py on the goldens branch).
// Tolerance: max |diff| <= 1e-4 * max |expected| + 1e-6.
TEST_P(T5GoldenTest, MatchesTransformers) {
  const std::string& name = GetParam();
  T5EncoderModel model = LoadComponent(DataPath(name + "/model/text_encoder_2"));
  auto golden = LoadGolden(name + "/golden/text_encoder_2.safetensors");
  ASSERT_TRUE(golden.count("input_ids") && golden.count("last_hidden_state"));
  torch::NoGradGuard no_grad;
  torch::Tensor out = model(golden.at("input_ids").round().to(torch::kLong));
  EXPECT_TRUE(AllClose(out, golden.at("last_hidden_state"), 1e-6, 1e-4));
  const torch::Tensor& expected = golden.at("last_hidden_state");
  std::cout << "[ " << name << "/text_encoder_2 ("
            << (model->config().gated_gelu ? "gated-gelu" : "relu")
            << ") ] last_hidden_state max|diff| = " << MaxAbsDiff(out, expected)
            << " (max|expected| " << expected.abs().max().item<double>() << ")\n";
}

INSTANTIATE_TEST_SUITE_P(Goldens, T5GoldenTest, ::testing::Values("flux-tiny", "flux-rich"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

// The goldens cover both feed-forward kinds.
TEST(T5GoldenCoverageTest, CasesCoverReluAndGatedGelu) {
  std::set<bool> gated;
  for (const char* name : {"flux-tiny", "flux-rich"}) {
    auto config =
        T5Config::FromFile(DataPath(std::string(name) + "/model/text_encoder_2/config.json"));
    ASSERT_TRUE(config.ok()) << config.status();
    gated.insert(config->gated_gelu);
  }
  EXPECT_EQ(gated.size(), 2u);
}

// bf16 runs, stays finite and near fp32: max |diff| <= 5e-2 * max |fp32| (bf16 keeps 8
// significant bits; the RMS norms rescale each sub-layer's input).
TEST(T5EncoderTest, Bfloat16CloseToFloat32) {
  for (const char* name : {"flux-tiny", "flux-rich"}) {
    T5EncoderModel model = LoadComponent(DataPath(std::string(name) + "/model/text_encoder_2"));
    auto golden = LoadGolden(std::string(name) + "/golden/text_encoder_2.safetensors");
    torch::Tensor ids = golden.at("input_ids").round().to(torch::kLong);
    torch::NoGradGuard no_grad;
    torch::Tensor ref = model(ids);
    model->to(torch::kBFloat16);
    torch::Tensor out = model(ids);
    EXPECT_EQ(out.scalar_type(), torch::kBFloat16) << name;
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>()) << name;
    EXPECT_TRUE(AllClose(out, ref, 0.0, 5e-2)) << name;
    std::cout << "[ bf16 " << name << " ] max|diff| = " << MaxAbsDiff(out, ref) << " (max|fp32| "
              << ref.abs().max().item<double>() << ")\n";
  }
}

// T5's norm: variance of the float32 input, and for a bf16 weight the normalised value is
// rounded to bf16 before the weight multiply.
TEST(T5LayerNormTest, FollowsTransformersCastOrder) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  T5LayerNorm norm(16, 1e-6);
  norm->named_parameters()["weight"].copy_(torch::randn({16}));
  torch::Tensor x = torch::randn({2, 3, 16}) * 5;
  torch::Tensor w = norm->named_parameters()["weight"].clone();
  torch::Tensor expected = w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6));
  EXPECT_TRUE(AllClose(norm(x), expected, 1e-6));

  norm->to(torch::kBFloat16);
  torch::Tensor xb = x.to(torch::kBFloat16);
  torch::Tensor normalised = xb * torch::rsqrt(xb.to(torch::kFloat).pow(2).mean(-1, true) + 1e-6);
  torch::Tensor expected_bf16 = w.to(torch::kBFloat16) * normalised.to(torch::kBFloat16);
  torch::Tensor got = norm(xb);
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(got, expected_bf16));
}

// Values from transformers' clamp in T5Block on the same inputs.
TEST(T5ClampFloat16Test, MatchesTransformers) {
  const float inf = std::numeric_limits<float>::infinity();
  torch::Tensor with_inf = torch::tensor({inf, -inf, 1.0f, 65504.0f}).to(torch::kHalf);
  EXPECT_TRUE(torch::equal(T5ClampFloat16(with_inf),
                           torch::tensor({64512.0f, -64512.0f, 1.0f, 64512.0f}).to(torch::kHalf)));
  torch::Tensor finite = torch::tensor({3.0f, 65504.0f, -65504.0f}).to(torch::kHalf);
  EXPECT_TRUE(torch::equal(T5ClampFloat16(finite), finite));
  torch::Tensor fp32 = torch::tensor({inf, 1e30f});
  EXPECT_TRUE(torch::equal(T5ClampFloat16(fp32), fp32));
}

nlohmann::json SmallConfig(const std::string& feed_forward_proj) {
  return {{"architectures", {"T5EncoderModel"}},
          {"vocab_size", 40},
          {"d_model", 8},
          {"d_kv", 4},
          {"d_ff", 12},
          {"num_heads", 2},
          {"num_layers", 2},
          {"relative_attention_num_buckets", 8},
          {"relative_attention_max_distance", 16},
          {"layer_norm_epsilon", 1e-6},
          {"feed_forward_proj", feed_forward_proj}};
}

TEST(T5ConfigTest, ParsesBothFeedForwardKinds) {
  const std::string dir = FreshTempDir("t5_config");
  WriteJson(dir + "/config.json", SmallConfig("relu"));
  auto config = T5Config::FromFile(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->gated_gelu);
  EXPECT_EQ(config->d_kv, 4);
  EXPECT_EQ(config->relative_attention_max_distance, 16);

  nlohmann::json json = SmallConfig("gated-gelu");
  json["dense_act_fn"] = "gelu_new";  // what transformers writes next to gated-gelu
  json["is_gated_act"] = true;
  WriteJson(dir + "/config.json", json);
  config = T5Config::FromFile(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->gated_gelu);
}

TEST(T5ConfigTest, RejectsUnsupportedFeedForwardNamingFileAndKey) {
  const std::string dir = FreshTempDir("t5_bad_ff");
  const std::string path = dir + "/config.json";
  for (const char* proj : {"gated-silu", "gelu", "gated-relu"}) {
    WriteJson(path, SmallConfig(proj));
    auto config = T5Config::FromFile(path);
    ASSERT_FALSE(config.ok()) << proj;
    const std::string message(config.status().message());
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("feed_forward_proj"), std::string::npos) << message;
    EXPECT_NE(message.find(proj), std::string::npos) << message;
  }
  nlohmann::json json = SmallConfig("gated-gelu");
  json["dense_act_fn"] = "silu";
  WriteJson(path, json);
  auto config = T5Config::FromFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("dense_act_fn"), std::string::npos);
}

// Writes a randomly initialised small gated model as a component folder and checks what loads.
class T5LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    WriteJson(dir_ + "/config.json", SmallConfig("gated-gelu"));
    config_ = T5Config::FromFile(dir_ + "/config.json").value();
    T5EncoderModel source(config_);
    testing::FillRandom(*source, /*seed=*/0);
    weights_ = StateDict(*source);
  }
  absl::Status Load(T5EncoderModel& model) {
    EXPECT_TRUE(WriteSafetensors(dir_ + "/model.safetensors", weights_).ok());
    auto store = WeightStore::OpenComponent(dir_);
    if (!store.ok()) return store.status();
    return LoadModuleWeights(*model, *store, T5EncoderKeys());
  }

  std::string dir_;
  T5Config config_;
  std::map<std::string, torch::Tensor> weights_;
};

TEST_F(T5LoadTest, CheckpointNamesMatchAndTiedEmbeddingCopyIsDropped) {
  const std::vector<std::string> expected_keys = {
      "shared.weight",
      "encoder.block.0.layer.0.SelfAttention.q.weight",
      "encoder.block.0.layer.0.SelfAttention.k.weight",
      "encoder.block.0.layer.0.SelfAttention.v.weight",
      "encoder.block.0.layer.0.SelfAttention.o.weight",
      "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
      "encoder.block.0.layer.0.layer_norm.weight",
      "encoder.block.0.layer.1.DenseReluDense.wi_0.weight",
      "encoder.block.0.layer.1.DenseReluDense.wi_1.weight",
      "encoder.block.0.layer.1.DenseReluDense.wo.weight",
      "encoder.block.0.layer.1.layer_norm.weight",
      "encoder.block.1.layer.0.SelfAttention.q.weight",
      "encoder.block.1.layer.0.SelfAttention.k.weight",
      "encoder.block.1.layer.0.SelfAttention.v.weight",
      "encoder.block.1.layer.0.SelfAttention.o.weight",
      "encoder.block.1.layer.0.layer_norm.weight",
      "encoder.block.1.layer.1.DenseReluDense.wi_0.weight",
      "encoder.block.1.layer.1.DenseReluDense.wi_1.weight",
      "encoder.block.1.layer.1.DenseReluDense.wo.weight",
      "encoder.block.1.layer.1.layer_norm.weight",
      "encoder.final_layer_norm.weight"};
  std::set<std::string> names;
  for (const auto& [name, tensor] : weights_) names.insert(name);
  EXPECT_EQ(names, std::set<std::string>(expected_keys.begin(), expected_keys.end()));

  weights_["encoder.embed_tokens.weight"] = weights_.at("shared.weight");
  T5EncoderModel model(config_);
  ASSERT_TRUE(Load(model).ok());
  EXPECT_TRUE(
      torch::equal(model->named_parameters()["shared.weight"], weights_.at("shared.weight")));
}

TEST_F(T5LoadTest, MissingKeyIsListed) {
  weights_.erase("encoder.block.1.layer.1.DenseReluDense.wi_1.weight");
  T5EncoderModel model(config_);
  absl::Status status = Load(model);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("missing: encoder.block.1.layer.1.DenseReluDense.wi_1.weight"),
            std::string::npos)
      << status.message();
}

TEST_F(T5LoadTest, WrongShapeIsListed) {
  weights_["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] =
      torch::zeros({32, 2});
  T5EncoderModel model(config_);
  absl::Status status = Load(model);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("mis-shaped: encoder.block.0.layer.0.SelfAttention."
                                  "relative_attention_bias.weight (file [32, 2], model [8, 2])"),
            std::string::npos)
      << status.message();
}

TEST_F(T5LoadTest, ReluCheckpointDoesNotLoadIntoGatedModel) {
  WriteJson(dir_ + "/config.json", SmallConfig("relu"));
  T5EncoderModel relu(T5Config::FromFile(dir_ + "/config.json").value());
  weights_ = StateDict(*relu);
  T5EncoderModel gated(config_);
  absl::Status status = Load(gated);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_NE(message.find("DenseReluDense.wi_0.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("unexpected: encoder.block.0.layer.1.DenseReluDense.wi.weight"),
            std::string::npos)
      << message;
}

TEST(T5EncoderTest, RejectsBadInput) {
  T5Config config;
  config.vocab_size = 10;
  config.d_model = 8;
  config.d_kv = 4;
  config.d_ff = 12;
  config.num_heads = 2;
  config.num_layers = 1;
  config.relative_attention_num_buckets = 8;
  T5EncoderModel model(config);
  testing::FillRandom(*model, /*seed=*/0);
  EXPECT_THROW(model(torch::full({1, 3}, 10, torch::kLong)), c10::Error);
  EXPECT_THROW(model(torch::zeros({3}, torch::kLong)), c10::Error);
  EXPECT_EQ(model(torch::zeros({2, 3}, torch::kLong)).sizes(), (std::vector<int64_t>{2, 3, 8}));
}

}  // namespace
}  // namespace tlcm
