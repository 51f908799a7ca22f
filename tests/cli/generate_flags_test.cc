#include "cli/generate_flags.h"

#include <gtest/gtest.h>

namespace tlcm {
namespace {

std::vector<std::string> Args(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--base_model_path", "/m", "--prompt", "p"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(GenerateFlagsTest, PrecisionAndLayoutFlagsReachTheModelSpec) {
  auto defaults = ParseGenerateFlags(Args({}));
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  ModelSpec spec = ModelSpecOf(*defaults, "m");
  EXPECT_EQ(spec.vae_dtype, "auto");
  EXPECT_TRUE(spec.channels_last);
  EXPECT_FALSE(spec.cuda_graphs);

  auto set = ParseGenerateFlags(
      Args({"--vae_dtype", "bf16", "--channels_last=false", "--cuda_graphs=true"}));
  ASSERT_TRUE(set.ok()) << set.status();
  spec = ModelSpecOf(*set, "m");
  EXPECT_EQ(spec.vae_dtype, "bf16");
  EXPECT_FALSE(spec.channels_last);
  EXPECT_TRUE(spec.cuda_graphs);
}

TEST(GenerateFlagsTest, BadPrecisionAndLayoutValuesNameTheFlag) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"vae_dtype", "int8"}, {"channels_last", "yes"}, {"cuda_graphs", "on"}}) {
    auto flags = ParseGenerateFlags(Args({"--" + flag, value}));
    ASSERT_FALSE(flags.ok()) << flag;
    EXPECT_EQ(flags.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(flags.status().message().find(flag), std::string::npos) << flags.status();
  }
}

TEST(GenerateFlagsTest, LorasByPathOrByNameReachTheModelSpec) {
  auto by_path = ParseGenerateFlags(Args({"--lora", "/styles/ink.safetensors:0.8", "--lora",
                                          "/styles/clay", "--lora=/styles/x.safetensors:-1.5"}));
  ASSERT_TRUE(by_path.ok()) << by_path.status();
  ASSERT_EQ(by_path->loras.size(), 3u);
  EXPECT_EQ(by_path->loras[0].name, "ink");
  EXPECT_FLOAT_EQ(by_path->loras[0].scale, 0.8f);
  EXPECT_EQ(by_path->loras[1].name, "clay");
  EXPECT_FLOAT_EQ(by_path->loras[1].scale, 1.0f);
  EXPECT_FLOAT_EQ(by_path->loras[2].scale, -1.5f);
  const ModelSpec spec = ModelSpecOf(*by_path, "m");
  EXPECT_EQ(spec.adapter_folder, "/styles");
  EXPECT_GE(spec.max_loras, 3);

  auto by_name = ParseGenerateFlags(Args({"--adapter_folder", "/a", "--lora", "ink:0.5"}));
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(ModelSpecOf(*by_name, "m").adapter_folder, "/a");
}

TEST(GenerateFlagsTest, BadLorasNameTheFlagAndTheRule) {
  for (const auto& [args, rule] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--lora", "ink:strong", "--adapter_folder", "/a"}, "NAME:SCALE"},
           {{"--lora", "ink:9", "--adapter_folder", "/a"}, "[-8, 8]"},
           {{"--lora", ":1", "--adapter_folder", "/a"}, "no adapter name"},
           {{"--lora", "ink:1"}, "--adapter_folder"},
           {{"--lora", "/a/x.safetensors", "--lora", "/b/y.safetensors"}, "one folder"},
       }) {
    auto flags = ParseGenerateFlags(Args(args));
    ASSERT_FALSE(flags.ok()) << args[1];
    EXPECT_EQ(flags.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(flags.status().message().find("--lora"), std::string::npos) << flags.status();
    EXPECT_NE(flags.status().message().find(rule), std::string::npos) << flags.status();
  }
}

}  // namespace
}  // namespace tlcm
