// The end-to-end cases made by diffusers itself (tests/data/reference/, see its README): each
// case's `args` line is parsed with tlcm-generate's own flag parser and run through the same
// CreatePipeline path the CLI and the server use. An independent check of tools/make_goldens.py.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/str_replace.h"
#include "cli/generate_flags.h"
#include "engine/whole_batch.h"
#include "pipelines/pipeline_factory.h"
#include "tests/pipelines/golden_runs.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

// Splits a shell-like line: whitespace-separated words, double quotes group words.
std::vector<std::string> SplitArgs(const std::string& line) {
  std::vector<std::string> out;
  std::string word;
  bool quoted = false, any = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
      any = true;
    } else if (!quoted && std::isspace(static_cast<unsigned char>(c))) {
      if (any) out.push_back(word);
      word.clear();
      any = false;
    } else {
      word.push_back(c);
      any = true;
    }
  }
  if (any) out.push_back(word);
  return out;
}

class ReferenceCaseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceCaseTest, ReproducesDiffusersImages) {
  const std::string dir = testing::DataPath("reference/" + GetParam());
  std::ifstream in(dir + "/args");
  std::stringstream line;
  line << in.rdbuf();
  auto flags = ParseGenerateFlags(SplitArgs(absl::StrReplaceAll(line.str(), {{"@CASE@", dir}})));
  ASSERT_TRUE(flags.ok()) << flags.status();
  ModelSpec spec;
  spec.name = GetParam();
  spec.base_model_path = flags->base_model_path;
  spec.lora_path = flags->lora_path;
  spec.dtype = flags->dtype;
  spec.max_sequence_length = flags->max_sequence_length;
  auto pipeline = CreatePipeline(spec, flags->device);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const engine::ModelInfo& info = (*pipeline)->info();
  std::vector<engine::ImageJob> jobs;
  for (int i = 0; i < flags->batch_size; ++i) {
    jobs.push_back({flags->prompt, "", flags->seed.value() + i,
                    flags->guidance_scale.value_or(info.default_guidance_scale)});
  }
  auto batch =
      engine::RunWholeBatch(**pipeline,
                            {spec.name, flags->steps, flags->width, flags->height,
                             flags->scheduler.empty() ? info.samplers.front() : flags->scheduler},
                            jobs);
  ASSERT_TRUE(batch.ok()) << batch.status();
  const std::vector<RgbImage>& images = batch->images;
  ASSERT_EQ(images.size(), static_cast<size_t>(flags->batch_size));
  for (int i = 0; i < flags->batch_size; ++i) {
    const RgbImage expected = testing::ReadPng(dir + "/expected-" + std::to_string(i) + ".png");
    // The reference README's bound for a correct fp32 implementation.
    EXPECT_TRUE(testing::ImagesClose(images[i], expected, 1.0, 8)) << "image " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Diffusers, ReferenceCaseTest,
                         ::testing::Values("sdxl/case-1", "sdxl/case-2", "flux/case-1",
                                           "flux/case-2"),
                         [](const auto& info) {
                           return absl::StrReplaceAll(info.param, {{"/", "_"}, {"-", ""}});
                         });

}  // namespace
}  // namespace tlcm
