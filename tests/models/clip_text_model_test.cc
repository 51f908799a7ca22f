#include "models/clip_text_model.h"

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

// Builds and loads the CLIP text model of a golden case's component folder.
ClipTextModel LoadComponent(const std::string& dir, const std::string& variant = "") {
  auto config = ClipTextConfig::FromFile(dir + "/config.json");
  EXPECT_TRUE(config.ok()) << config.status();
  ClipTextModel model(*config);
  auto store = WeightStore::OpenComponent(dir, variant);
  EXPECT_TRUE(store.ok()) << store.status();
  absl::Status loaded = LoadModuleWeights(*model, *store, ClipTextKeys());
  EXPECT_TRUE(loaded.ok()) << loaded;
  model->eval();
  return model;
}

struct GoldenCase {
  std::string name;       // tests/data/<name>/
  std::string component;  // text_encoder or text_encoder_2
};

class ClipGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

// fp32 against transformers' fp32 outputs (tools/make_goldens.py on the goldens branch).
// Tolerance: max |diff| <= 1e-4 * max |expected| + 1e-6 for every output.
TEST_P(ClipGoldenTest, MatchesTransformers) {
  const GoldenCase& c = GetParam();
  ClipTextModel model = LoadComponent(DataPath(c.name + "/model/" + c.component));
  auto golden = LoadGolden(c.name + "/golden/" + c.component + ".safetensors");
  ASSERT_TRUE(golden.count("input_ids"));
  torch::NoGradGuard no_grad;
  ClipTextOutput out = model(golden.at("input_ids").round().to(torch::kLong));

  const std::map<std::string, torch::Tensor> actual = {
      {"hidden_states_penultimate", out.penultimate_hidden_state},
      {"last_hidden_state", out.last_hidden_state},
      {"pooled", out.pooled}};
  for (const auto& [key, tensor] : actual) {
    ASSERT_TRUE(golden.count(key)) << key;
    EXPECT_TRUE(AllClose(tensor, golden.at(key), 1e-6, 1e-4)) << key;
    std::cout << "[ " << c.name << "/" << c.component << " ] " << key
              << " max|diff| = " << MaxAbsDiff(tensor, golden.at(key)) << "\n";
  }
  ASSERT_EQ(golden.count("text_embeds") == 1, model->config().with_projection);
  if (model->config().with_projection) {
    EXPECT_TRUE(AllClose(out.text_embeds, golden.at("text_embeds"), 1e-6, 1e-4));
    std::cout << "[ " << c.name << "/" << c.component << " ] text_embeds max|diff| = "
              << MaxAbsDiff(out.text_embeds, golden.at("text_embeds")) << "\n";
  } else {
    EXPECT_FALSE(out.text_embeds.defined());
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, ClipGoldenTest,
                         ::testing::Values(GoldenCase{"sdxl-tiny", "text_encoder"},
                                           GoldenCase{"sdxl-tiny", "text_encoder_2"},
                                           GoldenCase{"sdxl-rich", "text_encoder"},
                                           GoldenCase{"sdxl-rich", "text_encoder_2"},
                                           GoldenCase{"flux-tiny", "text_encoder"},
                                           GoldenCase{"flux-rich", "text_encoder"}),
                         [](const ::testing::TestParamInfo<GoldenCase>& info) {
                           std::string name = info.param.name + "_" + info.param.component;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

// The float16 weight file (variant "fp16") loads into the float32 model and matches
// transformers run in float32 on the same upcast weights. Tolerance as in the goldens above.
TEST(ClipTextModelTest, LoadsFloat16VariantWeights) {
  const std::string dir = DataPath("sdxl-rich/model/text_encoder_2");
  auto store = WeightStore::OpenComponent(dir, "fp16");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_NE(store->source().find("model.fp16.safetensors"), std::string::npos) << store->source();
  ClipTextModel model = LoadComponent(dir, "fp16");
  auto golden = LoadGolden("sdxl-rich/golden/text_encoder_2_fp16.safetensors");
  torch::NoGradGuard no_grad;
  ClipTextOutput out = model(golden.at("input_ids").round().to(torch::kLong));
  EXPECT_EQ(out.last_hidden_state.scalar_type(), torch::kFloat);
  EXPECT_TRUE(
      AllClose(out.penultimate_hidden_state, golden.at("hidden_states_penultimate"), 1e-6, 1e-4));
  EXPECT_TRUE(AllClose(out.last_hidden_state, golden.at("last_hidden_state"), 1e-6, 1e-4));
  EXPECT_TRUE(AllClose(out.pooled, golden.at("pooled"), 1e-6, 1e-4));
  EXPECT_TRUE(AllClose(out.text_embeds, golden.at("text_embeds"), 1e-6, 1e-4));
  std::cout << "[ sdxl-rich/text_encoder_2 fp16 variant ] text_embeds max|diff| = "
            << MaxAbsDiff(out.text_embeds, golden.at("text_embeds")) << "\n";
}

// bf16 runs and stays finite and near the fp32 result: max |diff| <= 5e-2 * max |fp32| for
// every output (bf16 keeps 8 significant bits).
TEST(ClipTextModelTest, Bfloat16CloseToFloat32) {
  ClipTextModel model = LoadComponent(DataPath("sdxl-tiny/model/text_encoder_2"));
  auto golden = LoadGolden("sdxl-tiny/golden/text_encoder_2.safetensors");
  torch::Tensor ids = golden.at("input_ids").round().to(torch::kLong);
  torch::NoGradGuard no_grad;
  ClipTextOutput ref = model(ids);
  model->to(torch::kBFloat16);
  ClipTextOutput out = model(ids);
  const std::vector<std::pair<std::string, std::pair<torch::Tensor, torch::Tensor>>> pairs = {
      {"penultimate", {out.penultimate_hidden_state, ref.penultimate_hidden_state}},
      {"last", {out.last_hidden_state, ref.last_hidden_state}},
      {"pooled", {out.pooled, ref.pooled}},
      {"text_embeds", {out.text_embeds, ref.text_embeds}}};
  for (const auto& [key, tensors] : pairs) {
    const auto& [bf16, fp32] = tensors;
    EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16) << key;
    EXPECT_TRUE(torch::isfinite(bf16).all().item<bool>()) << key;
    EXPECT_TRUE(AllClose(bf16, fp32, 0.0, 5e-2)) << key;
    std::cout << "[ bf16 ] " << key << " max|diff| = " << MaxAbsDiff(bf16, fp32) << " (max|fp32| "
              << fp32.abs().max().item<double>() << ")\n";
  }
}

// A small synthetic config: two layers, projection, legacy eos_token_id.
nlohmann::json SmallConfig() {
  return {{"architectures", {"CLIPTextModelWithProjection"}},
          {"vocab_size", 50},
          {"hidden_size", 8},
          {"intermediate_size", 12},
          {"num_attention_heads", 2},
          {"num_hidden_layers", 2},
          {"max_position_embeddings", 16},
          {"hidden_act", "gelu"},
          {"layer_norm_eps", 1e-5},
          {"projection_dim", 4},
          {"eos_token_id", 2}};
}

TEST(ClipTextConfigTest, ParsesSizesAndProjectionClass) {
  const std::string dir = FreshTempDir("clip_config");
  nlohmann::json json = SmallConfig();
  WriteJson(dir + "/config.json", json);
  auto config = ClipTextConfig::FromFile(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->hidden_size, 8);
  EXPECT_EQ(config->intermediate_size, 12);
  EXPECT_EQ(config->num_hidden_layers, 2);
  EXPECT_EQ(config->hidden_act, ClipActivation::kGelu);
  EXPECT_EQ(config->projection_dim, 4);
  EXPECT_TRUE(config->with_projection);

  json["architectures"] = {"CLIPTextModel"};
  WriteJson(dir + "/config.json", json);
  config = ClipTextConfig::FromFile(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->with_projection);
}

TEST(ClipTextConfigTest, RejectsUnsupportedActivationNamingFileAndKey) {
  const std::string dir = FreshTempDir("clip_bad_act");
  nlohmann::json json = SmallConfig();
  json["hidden_act"] = "relu";
  WriteJson(dir + "/config.json", json);
  auto config = ClipTextConfig::FromFile(dir + "/config.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_NE(message.find(dir + "/config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("hidden_act"), std::string::npos) << message;
  EXPECT_NE(message.find("relu"), std::string::npos) << message;
}

TEST(ClipTextConfigTest, RejectsHeadsThatDoNotDivideHiddenSize) {
  const std::string dir = FreshTempDir("clip_bad_heads");
  nlohmann::json json = SmallConfig();
  json["num_attention_heads"] = 3;
  WriteJson(dir + "/config.json", json);
  auto config = ClipTextConfig::FromFile(dir + "/config.json");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("num_attention_heads"), std::string::npos);
}

// Writes a randomly initialised small model as a component folder and checks what loads.
class ClipLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    WriteJson(dir_ + "/config.json", SmallConfig());
    config_ = ClipTextConfig::FromFile(dir_ + "/config.json").value();
    ClipTextModel source(config_);
    testing::FillRandom(*source, /*seed=*/0);
    weights_ = StateDict(*source);
  }
  absl::Status Load(ClipTextModel& model) {
    EXPECT_TRUE(WriteSafetensors(dir_ + "/model.safetensors", weights_).ok());
    auto store = WeightStore::OpenComponent(dir_);
    if (!store.ok()) return store.status();
    return LoadModuleWeights(*model, *store, ClipTextKeys());
  }

  std::string dir_;
  ClipTextConfig config_;
  std::map<std::string, torch::Tensor> weights_;
};

TEST_F(ClipLoadTest, LoadsEveryKeyAndIgnoresPositionIds) {
  weights_["text_model.embeddings.position_ids"] = torch::arange(16, torch::kFloat).unsqueeze(0);
  ClipTextModel model(config_);
  ASSERT_TRUE(Load(model).ok());
  EXPECT_TRUE(torch::equal(model->named_parameters()["text_projection.weight"],
                           weights_.at("text_projection.weight")));
  EXPECT_EQ(model->named_parameters().size() + 1, weights_.size());
}

TEST_F(ClipLoadTest, MissingKeyIsListed) {
  weights_.erase("text_model.encoder.layers.1.mlp.fc2.bias");
  ClipTextModel model(config_);
  absl::Status status = Load(model);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_NE(message.find("missing: text_model.encoder.layers.1.mlp.fc2.bias"), std::string::npos)
      << message;
}

TEST_F(ClipLoadTest, WrongShapeIsListed) {
  weights_["text_model.final_layer_norm.weight"] = torch::ones({9});
  ClipTextModel model(config_);
  absl::Status status = Load(model);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_NE(message.find("mis-shaped: text_model.final_layer_norm.weight (file [9], model [8])"),
            std::string::npos)
      << message;
}

TEST_F(ClipLoadTest, ProjectionWeightsWithoutProjectionAreUnexpected) {
  config_.with_projection = false;
  ClipTextModel model(config_);
  absl::Status status = Load(model);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("unexpected: text_projection.weight"), std::string::npos)
      << status.message();
}

// Legacy eos_token_id 2 pools at argmax(ids) (first maximum); otherwise at the first eos id.
TEST(ClipTextModelTest, PoolingPosition) {
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::tensor({1, 9, 7, 7, 3, 4, 7, 2, 9, 9}, torch::kLong).view({2, 5});
  ClipTextConfig config;
  config.vocab_size = 10;
  config.hidden_size = 8;
  config.intermediate_size = 12;
  config.num_attention_heads = 2;
  config.num_hidden_layers = 1;
  config.max_position_embeddings = 5;
  for (const auto& [eos, expected] :
       std::vector<std::pair<int64_t, std::vector<int64_t>>>{{2, {1, 3}}, {7, {2, 1}}}) {
    config.eos_token_id = eos;
    ClipTextModel model(config);
    testing::FillRandom(*model, /*seed=*/0);
    ClipTextOutput out = model(ids);
    EXPECT_FALSE(out.text_embeds.defined());
    for (int64_t b = 0; b < 2; ++b) {
      EXPECT_TRUE(torch::equal(out.pooled[b], out.last_hidden_state[b][expected[b]]))
          << "eos " << eos << " sample " << b;
    }
  }
}

// With one layer, hidden_states[-2] is the embedding output.
TEST(ClipTextModelTest, PenultimateOfOneLayerIsTheEmbedding) {
  torch::NoGradGuard no_grad;
  ClipTextConfig config;
  config.vocab_size = 10;
  config.hidden_size = 8;
  config.intermediate_size = 12;
  config.num_attention_heads = 2;
  config.num_hidden_layers = 1;
  config.max_position_embeddings = 5;
  ClipTextModel model(config);
  testing::FillRandom(*model, /*seed=*/0);
  torch::Tensor ids = torch::tensor({3, 1, 4, 1, 5}, torch::kLong).view({1, 5});
  auto params = model->named_parameters();
  torch::Tensor expected =
      params["text_model.embeddings.token_embedding.weight"].index_select(0, ids[0]) +
      params["text_model.embeddings.position_embedding.weight"];
  EXPECT_TRUE(AllClose(model(ids).penultimate_hidden_state[0], expected, 1e-7));
}

TEST(ClipTextModelTest, RejectsTooLongInput) {
  ClipTextConfig config;
  config.vocab_size = 10;
  config.hidden_size = 8;
  config.intermediate_size = 12;
  config.num_attention_heads = 2;
  config.num_hidden_layers = 1;
  config.max_position_embeddings = 5;
  ClipTextModel model(config);
  testing::FillRandom(*model, /*seed=*/0);
  EXPECT_THROW(model(torch::zeros({1, 6}, torch::kLong)), c10::Error);
  EXPECT_THROW(model(torch::full({1, 3}, 10, torch::kLong)), c10::Error);
}

}  // namespace
}  // namespace tlcm
