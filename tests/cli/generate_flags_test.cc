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

  auto set = ParseGenerateFlags(Args({"--vae_dtype", "bf16", "--channels_last=false"}));
  ASSERT_TRUE(set.ok()) << set.status();
  spec = ModelSpecOf(*set, "m");
  EXPECT_EQ(spec.vae_dtype, "bf16");
  EXPECT_FALSE(spec.channels_last);
}

TEST(GenerateFlagsTest, BadPrecisionAndLayoutValuesNameTheFlag) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"vae_dtype", "int8"}, {"channels_last", "yes"}}) {
    auto flags = ParseGenerateFlags(Args({"--" + flag, value}));
    ASSERT_FALSE(flags.ok()) << flag;
    EXPECT_EQ(flags.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(flags.status().message().find(flag), std::string::npos) << flags.status();
  }
}

}  // namespace
}  // namespace tlcm
