// LoadComponent on configs that describe impossible models: a precise status naming the file
// (and the key where a rule is broken), never a raw LibTorch exception with a backtrace.
#include "pipelines/component_loader.h"

#include <filesystem>
#include <fstream>
#include <new>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "loaders/key_remap.h"
#include "models/autoencoder_kl.h"
#include "tests/test_data_path.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A copy of the tiny SDXL VAE folder whose config.json has `key` set to `value`.
std::string VaeWith(const std::string& key, const nlohmann::json& value) {
  const std::string dir = testing::FreshTempDir("vae-config");
  fs::copy(testing::DataPath("sdxl-tiny/model/vae"), dir,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  config[key] = value;
  std::ofstream(dir + "/config.json") << config.dump();
  return dir;
}

absl::Status LoadVae(const std::string& dir) {
  return LoadComponent<AutoencoderKLDecoder, AutoencoderKLConfig>(dir, "", VaeDecoderKeys(),
                                                                  WeightPlacement{})
      .status();
}

TEST(ComponentLoaderTest, SizesOutsideTheirRangeAreNamedWithFileAndKey) {
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"block_out_channels", {-32, 64}},
                                                           {"block_out_channels", {200000}},
                                                           {"latent_channels", 0},
                                                           {"layers_per_block", -1},
                                                           {"norm_num_groups", int64_t{1} << 40}}) {
    const std::string dir = VaeWith(key, value);
    const absl::Status status = LoadVae(dir);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << key << " " << value;
    EXPECT_THAT(std::string(status.message()), HasSubstr(dir + "/config.json")) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("\"" + key + "\"")) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("is outside [1, 131072]")) << status;
  }
}

TEST(ComponentLoaderTest, AModuleThatCannotBeBuiltIsAStatusWithoutBacktrace) {
  const absl::Status memory = ModuleBuildError("m/config.json", std::bad_alloc());
  EXPECT_EQ(memory.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(memory.message()),
              HasSubstr("m/config.json: the model it describes cannot be built"));
  try {
    torch::empty({-1});
    FAIL() << "a negative size was accepted";
  } catch (const std::exception& e) {
    const absl::Status shape = ModuleBuildError("m/config.json", e);
    EXPECT_EQ(shape.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(shape.message()), HasSubstr("negative"));
    EXPECT_EQ(std::string(shape.message()).find('\n'), std::string::npos) << shape;
    EXPECT_THAT(std::string(shape.message()), ::testing::Not(HasSubstr("frame #")));
  }
}

}  // namespace
}  // namespace tlcm
