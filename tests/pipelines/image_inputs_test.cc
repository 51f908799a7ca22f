// Image inputs: the strength rules, input checks, preprocessing, and img2img / inpainting runs of
// the SDXL and FLUX pipelines against diffusers (tests/data/<case>/golden/image_inputs, made by
// tools/make_image_input_goldens.py).
#include "pipelines/image_inputs.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "pipelines/flux_pipeline.h"
#include "pipelines/sdxl_pipeline.h"
#include "tests/pipelines/golden_runs.h"

namespace tlcm {
namespace {

using testing::DataPath;

TEST(StartStepTest, FollowsEachFamilysRounding) {
  // SDXL floors steps * strength; FLUX floors steps - steps * strength.
  EXPECT_EQ(SdxlStartStep(4, 0.6), 2);
  EXPECT_EQ(FluxStartStep(4, 0.6), 1);
  EXPECT_EQ(SdxlStartStep(4, 1.0), 0);
  EXPECT_EQ(FluxStartStep(4, 1.0), 0);
  EXPECT_EQ(SdxlStartStep(5, 0.5), 3);  // 2 steps run
  EXPECT_EQ(FluxStartStep(5, 0.5), 2);  // 3 steps run
  EXPECT_EQ(StartStep("flux", 4, 0.6), 1);
  EXPECT_EQ(StartStep("sdxl", 4, 0.6), 2);
  EXPECT_EQ(SdxlStartStep(4, 0.2), 4);  // no step: refused by CheckImageInputs
}

RgbImage Solid(int width, int height, uint8_t value) {
  return RgbImage{width, height,
                  std::vector<uint8_t>(static_cast<size_t>(width) * height * 3, value)};
}

TEST(CheckImageInputsTest, NamesTheField) {
  ImageRequest plain{"a", "", 1, 0};
  ImageRequest with_image = plain;
  with_image.image = std::make_shared<RgbImage>(Solid(8, 8, 10));
  ImageRequest with_mask = with_image;
  with_mask.mask = std::make_shared<RgbImage>(Solid(8, 8, 255));
  ImageRequest mask_only = plain;
  mask_only.mask = std::make_shared<RgbImage>(Solid(8, 8, 255));
  ImageRequest wrong_mask = with_image;
  wrong_mask.mask = std::make_shared<RgbImage>(Solid(8, 4, 255));

  EXPECT_TRUE(CheckImageInputs({plain}, 1.0, 4, 0).ok());
  EXPECT_TRUE(CheckImageInputs({with_image, with_image}, 0.5, 4, 2).ok());
  EXPECT_TRUE(CheckImageInputs({with_mask}, 1.0, 4, 0).ok());
  const auto expect = [](const absl::Status& status, const std::string& field) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_TRUE(absl::StartsWith(status.message(), field)) << status;
  };
  expect(CheckImageInputs({mask_only}, 1.0, 4, 0), "mask");
  expect(CheckImageInputs({with_image, plain}, 1.0, 4, 0), "image");
  expect(CheckImageInputs({with_image, with_mask}, 1.0, 4, 0), "mask");
  expect(CheckImageInputs({wrong_mask}, 1.0, 4, 0), "mask");
  expect(CheckImageInputs({with_image}, 0.0, 4, 4), "strength");
  expect(CheckImageInputs({with_image}, 1.5, 4, 0), "strength");
  expect(CheckImageInputs({with_image}, 0.2, 4, 4), "strength");
}

TEST(ImageTensorTest, NormalizesAndBinarizes) {
  const torch::Tensor image = ImageTensor(Solid(4, 2, 255), 4, 2);
  EXPECT_EQ(image.sizes(), (std::vector<int64_t>{1, 3, 2, 4}));
  EXPECT_TRUE(torch::allclose(image, torch::ones_like(image)));
  // 127 / 255 < 0.5 <= 128 / 255.
  EXPECT_EQ(MaskTensor(Solid(2, 2, 127), 2, 2).sum().item<float>(), 0.0f);
  EXPECT_EQ(MaskTensor(Solid(2, 2, 128), 2, 2).sum().item<float>(), 4.0f);
  EXPECT_EQ(MaskTensor(Solid(6, 6, 200), 3, 2).sizes(), (std::vector<int64_t>{1, 1, 2, 3}));
}

struct ImageGoldenRun {
  std::string name, kind;
  std::vector<ImageRequest> requests;
  RunSettings settings;
  std::vector<std::string> images;
};

std::vector<ImageGoldenRun> LoadImageRuns(const std::string& case_name) {
  const std::string folder = case_name + "/golden/image_inputs/";
  std::ifstream in(DataPath(folder + "runs.json"));
  EXPECT_TRUE(in.good()) << case_name;
  std::vector<ImageGoldenRun> runs;
  for (const auto& j : nlohmann::json::parse(in)) {
    ImageGoldenRun r;
    r.name = j.at("name");
    r.kind = j.at("kind");
    const auto prompts = j.at("prompts").get<std::vector<std::string>>();
    const auto seeds = j.at("seeds").get<std::vector<uint64_t>>();
    const auto inputs = j.at("inputs").get<std::vector<std::string>>();
    const auto masks = j.at("masks").get<std::vector<std::string>>();
    for (size_t i = 0; i < seeds.size(); ++i) {
      ImageRequest request{prompts[i], "", seeds[i], j.at("guidance_scale").get<float>()};
      request.image = std::make_shared<RgbImage>(testing::ReadPng(DataPath(folder + inputs[i])));
      if (!masks.empty())
        request.mask = std::make_shared<RgbImage>(testing::ReadPng(DataPath(folder + masks[i])));
      r.requests.push_back(std::move(request));
    }
    r.settings.steps = j.at("steps");
    r.settings.width = j.at("width");
    r.settings.height = j.at("height");
    r.settings.strength = j.at("strength");
    r.images = j.at("images").get<std::vector<std::string>>();
    runs.push_back(std::move(r));
  }
  EXPECT_FALSE(runs.empty());
  return runs;
}

template <typename Pipeline>
void ExpectImageRuns(const std::string& case_name, Pipeline& pipeline, double mean_levels,
                     int max_levels) {
  for (const ImageGoldenRun& run : LoadImageRuns(case_name)) {
    SCOPED_TRACE(run.name);
    auto result = pipeline.Run(run.requests, run.settings);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->images.size(), run.images.size());
    for (size_t i = 0; i < run.images.size(); ++i) {
      const RgbImage expected =
          testing::ReadPng(DataPath(case_name + "/golden/image_inputs/" + run.images[i]));
      ASSERT_TRUE(result->images[i].has_value());
      EXPECT_TRUE(testing::ImagesClose(*result->images[i], expected, mean_levels, max_levels))
          << run.images[i];
    }
  }
}

PipelineOptions WithLora(const std::string& case_name) {
  PipelineOptions options;
  options.lora_path = DataPath(case_name + "/lora");
  return options;
}

TEST(SdxlImageInputsTest, Img2ImgAndInpaintingMatchDiffusers) {
  auto p = StableDiffusionXLPipeline::Load(DataPath("sdxl-tiny/model"), WithLora("sdxl-tiny"));
  ASSERT_TRUE(p.ok()) << p.status();
  ExpectImageRuns("sdxl-tiny", **p, 0.5, 3);
}

TEST(FluxImageInputsTest, Img2ImgAndInpaintingMatchDiffusers) {
  for (const auto& [case_name, length, mean, max] :
       std::vector<std::tuple<std::string, int, double, int>>{{"flux-tiny", 24, 0.5, 3},
                                                              {"flux-rich", 32, 0.6, 5}}) {
    SCOPED_TRACE(case_name);
    PipelineOptions options = WithLora(case_name);
    options.max_sequence_length = length;
    auto p = FluxPipeline::Load(DataPath(case_name + "/model"), options);
    ASSERT_TRUE(p.ok()) << p.status();
    ExpectImageRuns(case_name, **p, mean, max);
  }
}

// A 9-channel inpainting UNet (sdxl-tiny-inpaint: sdxl-tiny with conv_in widened, no LoRA) reads
// the mask and the masked image's latents: StableDiffusionXLInpaintPipeline's images, and every
// request needs a mask.
TEST(SdxlImageInputsTest, NineChannelInpaintingMatchesDiffusers) {
  auto p = StableDiffusionXLPipeline::Load(DataPath("sdxl-tiny-inpaint/model"), PipelineOptions{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->inpainting_unet());
  ExpectImageRuns("sdxl-tiny-inpaint", **p, 0.5, 3);

  ImageRequest request{"a", "", 1, 0};
  for (bool with_image : {false, true}) {
    if (with_image) request.image = std::make_shared<RgbImage>(Solid(64, 64, 90));
    auto result = (*p)->Run({request}, RunSettings{4, 64, 64, "", 0.5});
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(result.status().message(), "mask: ")) << result.status();
  }
  auto plain = StableDiffusionXLPipeline::Load(DataPath("sdxl-tiny/model"), PipelineOptions{});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE((*plain)->inpainting_unet());
}

TEST(SdxlImageInputsTest, RefusesRunsWithoutAStep) {
  auto p = StableDiffusionXLPipeline::Load(DataPath("sdxl-tiny/model"), PipelineOptions{});
  ASSERT_TRUE(p.ok()) << p.status();
  ImageRequest request{"a", "", 1, 0};
  request.image = std::make_shared<RgbImage>(Solid(64, 64, 90));
  RunSettings settings{4, 64, 64, "", 0.2};
  auto result = (*p)->Run({request}, settings);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(result.status().message(), "strength")) << result.status();
}

}  // namespace
}  // namespace tlcm
