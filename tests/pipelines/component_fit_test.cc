#include "pipelines/component_fit.h"

#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;
using testing::DataPath;

// A copy of the config.json files of tests/data/<case>/model (no weights: the check reads none),
// with `edit` applied to <component>/config.json.
std::string ConfigCopy(const std::string& case_name, const std::string& component,
                       const std::function<void(nlohmann::json&)>& edit) {
  const fs::path dir = testing::FreshTempPath("fit_" + case_name + "_" + component);
  for (const auto& entry : fs::directory_iterator(DataPath(case_name + "/model"))) {
    const fs::path config = entry.path() / "config.json";
    if (!fs::exists(config)) continue;
    fs::create_directories(dir / entry.path().filename());
    fs::copy_file(config, dir / entry.path().filename() / "config.json");
  }
  const fs::path target = dir / component / "config.json";
  nlohmann::json json = nlohmann::json::parse(std::ifstream(target));
  edit(json);
  std::ofstream(target) << json.dump(2);
  return dir.string();
}

TEST(ComponentFitTest, TheTestModelsFit) {
  for (const std::string c : {"sdxl-tiny", "sdxl-rich", "sdxl-tiny-inpaint"}) {
    EXPECT_TRUE(CheckSdxlComponentsFit(DataPath(c + "/model"), DataPath(c + "/model/vae")).ok())
        << c;
  }
  for (const std::string c : {"flux-tiny", "flux-rich"}) {
    EXPECT_TRUE(CheckFluxComponentsFit(DataPath(c + "/model"), DataPath(c + "/model/vae")).ok())
        << c;
  }
}

::testing::AssertionResult NamesMismatch(const absl::Status& status, const std::string& file,
                                         const std::string& key) {
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "status " << status;
  }
  const std::string message(status.message());
  if (message.find(file) == std::string::npos || message.find(key) == std::string::npos) {
    return ::testing::AssertionFailure() << "'" << message << "' names no " << file << " / " << key;
  }
  return ::testing::AssertionSuccess();
}

TEST(ComponentFitTest, SdxlMismatchesNameTheFilesAndKeys) {
  const std::string wide = ConfigCopy("sdxl-rich", "text_encoder_2", [](nlohmann::json& j) {
    j["hidden_size"] = j["hidden_size"].get<int>() * 2;
    j["intermediate_size"] = j["intermediate_size"].get<int>() * 2;
  });
  const absl::Status cross = CheckSdxlComponentsFit(wide, wide + "/vae");
  EXPECT_TRUE(NamesMismatch(cross, "unet/config.json", "cross_attention_dim"));
  EXPECT_TRUE(NamesMismatch(cross, "text_encoder_2/config.json", "hidden_size"));

  const std::string projection = ConfigCopy("sdxl-rich", "text_encoder_2", [](nlohmann::json& j) {
    j["projection_dim"] = j["projection_dim"].get<int>() + 8;
  });
  EXPECT_TRUE(NamesMismatch(CheckSdxlComponentsFit(projection, projection + "/vae"),
                            "unet/config.json", "projection_class_embeddings_input_dim"));

  const std::string latent =
      ConfigCopy("sdxl-tiny", "vae", [](nlohmann::json& j) { j["latent_channels"] = 16; });
  EXPECT_TRUE(NamesMismatch(CheckSdxlComponentsFit(latent, latent + "/vae"), "vae/config.json",
                            "latent_channels"));
}

TEST(ComponentFitTest, FluxMismatchesNameTheFilesAndKeys) {
  const std::string t5 = ConfigCopy("flux-rich", "text_encoder_2", [](nlohmann::json& j) {
    j["d_model"] = j["d_model"].get<int>() * 2;
  });
  EXPECT_TRUE(NamesMismatch(CheckFluxComponentsFit(t5, t5 + "/vae"), "transformer/config.json",
                            "joint_attention_dim"));

  const std::string clip = ConfigCopy("flux-rich", "text_encoder", [](nlohmann::json& j) {
    j["hidden_size"] = j["hidden_size"].get<int>() * 2;
  });
  EXPECT_TRUE(NamesMismatch(CheckFluxComponentsFit(clip, clip + "/vae"), "text_encoder/config.json",
                            "pooled_projection_dim"));

  // An SDXL VAE (4 latent channels) beside a FLUX transformer.
  const std::string vae =
      ConfigCopy("flux-tiny", "transformer", [](nlohmann::json& j) { j["in_channels"] = 64; });
  EXPECT_TRUE(NamesMismatch(CheckFluxComponentsFit(vae, vae + "/vae"), "vae/config.json",
                            "latent_channels"));
}

}  // namespace
}  // namespace tlcm
