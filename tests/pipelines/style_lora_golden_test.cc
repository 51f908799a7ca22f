// Per-request style LoRAs against diffusers: tests/data/<case>/golden/styles/ (made by
// tools/make_style_lora_goldens.py: the TLCM LoRA merged, then load_lora_weights + set_adapters
// for one or two style adapters at several scales), on the tiny SDXL and FLUX cases.
#include <gtest/gtest.h>

#include "pipelines/flux_pipeline.h"
#include "pipelines/sdxl_pipeline.h"
#include "tests/pipelines/golden_runs.h"

namespace tlcm {
namespace {

using testing::DataPath;

// The pipelines' whole-image tolerance for float32 parity (sdxl_pipeline_test.cc).
constexpr double kMeanLevels = 0.5;
constexpr int kMaxLevels = 3;

constexpr char kStyles[] = "golden/styles";

std::vector<testing::GoldenRun> LoadStyleRuns(const std::string& case_name) {
  std::vector<testing::GoldenRun> runs = testing::LoadGoldenRuns(case_name, kStyles);
  EXPECT_FALSE(runs.empty()) << case_name;
  return runs;
}

template <typename Pipeline>
std::unique_ptr<Pipeline> LoadWithStyles(const std::string& case_name) {
  PipelineOptions options;
  options.lora_path = DataPath(case_name + "/lora");
  options.adapter_folder = DataPath(case_name + "/styles");
  options.max_sequence_length = LoadStyleRuns(case_name).front().max_sequence_length;
  auto p = Pipeline::Load(DataPath(case_name + "/model"), options);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? std::move(*p) : nullptr;
}

template <typename Pipeline>
ImageRequest RequestOf(Pipeline& pipeline, const testing::GoldenRun& style) {
  ImageRequest request = testing::RequestsOf(style).front();
  for (const auto& [name, weight] : style.loras) {
    auto adapter = pipeline.adapters().Get(name);
    EXPECT_TRUE(adapter.ok()) << adapter.status();
    if (adapter.ok()) request.adapters.push_back({*adapter, weight});
  }
  return request;
}

RunSettings SettingsOf(const testing::GoldenRun& run) {
  return {run.steps, run.width, run.height, run.scheduler};
}

template <typename Pipeline>
void ExpectStyleRunsMatchDiffusers(const std::string& case_name) {
  auto pipeline = LoadWithStyles<Pipeline>(case_name);
  ASSERT_TRUE(pipeline);
  EXPECT_EQ(pipeline->adapters().Names(), (std::vector<std::string>{"clay", "ink"}));
  for (const testing::GoldenRun& style : LoadStyleRuns(case_name)) {
    SCOPED_TRACE(style.name);
    auto result = pipeline->Run({RequestOf(*pipeline, style)}, SettingsOf(style));
    ASSERT_TRUE(result.ok()) << result.status();
    const RgbImage expected =
        testing::ReadPng(DataPath(case_name + "/golden/styles/" + style.images[0]));
    EXPECT_TRUE(testing::ImagesClose(*result->images[0], expected, kMeanLevels, kMaxLevels));
  }
}

// Every style run of the case in one batch (each with its own adapter set, one without any):
// each image is the one it is alone, and diffusers'.
template <typename Pipeline>
void ExpectMixedBatchGivesEachImageItsOwn(const std::string& case_name) {
  auto pipeline = LoadWithStyles<Pipeline>(case_name);
  ASSERT_TRUE(pipeline);
  const std::vector<testing::GoldenRun> styles = LoadStyleRuns(case_name);
  std::vector<ImageRequest> batch;
  for (const testing::GoldenRun& style : styles) batch.push_back(RequestOf(*pipeline, style));
  batch.insert(batch.begin() + 1, testing::RequestsOf(styles.front()).front());  // no style
  auto mixed = pipeline->Run(batch, SettingsOf(styles.front()));
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  ASSERT_EQ(mixed->images.size(), batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    SCOPED_TRACE(i);
    auto alone = pipeline->Run({batch[i]}, SettingsOf(styles.front()));
    ASSERT_TRUE(alone.ok()) << alone.status();
    // The same arithmetic per row; only the batched matrix products' blocking may differ.
    EXPECT_TRUE(testing::ImagesClose(*mixed->images[i], *alone->images[0], 0.05, 1));
  }
  for (size_t i = 0; i < styles.size(); ++i) {
    const RgbImage expected =
        testing::ReadPng(DataPath(case_name + "/golden/styles/" + styles[i].images[0]));
    EXPECT_TRUE(
        testing::ImagesClose(*mixed->images[i < 1 ? i : i + 1], expected, kMeanLevels, kMaxLevels))
        << styles[i].name;
  }
}

TEST(StyleLoraGoldenTest, SdxlImagesMatchDiffusers) {
  ExpectStyleRunsMatchDiffusers<StableDiffusionXLPipeline>("sdxl-tiny");
}

TEST(StyleLoraGoldenTest, FluxImagesMatchDiffusers) {
  ExpectStyleRunsMatchDiffusers<FluxPipeline>("flux-tiny");
}

TEST(StyleLoraGoldenTest, SdxlMixedBatchGivesEachImageItsOwn) {
  ExpectMixedBatchGivesEachImageItsOwn<StableDiffusionXLPipeline>("sdxl-tiny");
}

TEST(StyleLoraGoldenTest, FluxMixedBatchGivesEachImageItsOwn) {
  ExpectMixedBatchGivesEachImageItsOwn<FluxPipeline>("flux-tiny");
}

}  // namespace
}  // namespace tlcm
