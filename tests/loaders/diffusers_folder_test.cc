#include "loaders/diffusers_folder.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

TEST(DiffusersFolderTest, DetectsTheFamilyOfEachReferencePipeline) {
  auto sdxl = OpenDiffusersFolder(testing::DataPath("reference/sdxl/case-1/model"));
  ASSERT_TRUE(sdxl.ok()) << sdxl.status();
  EXPECT_EQ(sdxl->family, PipelineFamily::kSdxl);
  EXPECT_EQ(sdxl->component_class.at("text_encoder_2"), "CLIPTextModelWithProjection");
  auto flux = OpenDiffusersFolder(testing::DataPath("reference/flux/case-1/model"));
  ASSERT_TRUE(flux.ok()) << flux.status();
  EXPECT_EQ(flux->family, PipelineFamily::kFlux);
  EXPECT_EQ(flux->ComponentDir("transformer"),
            testing::DataPath("reference/flux/case-1/model") + "/transformer");
}

TEST(DiffusersFolderTest, RejectsUnknownPipelinesAndMissingComponents) {
  const fs::path dir = testing::FreshTempDir("dfolder");
  EXPECT_EQ(OpenDiffusersFolder(dir.string()).status().code(), absl::StatusCode::kNotFound);

  std::ofstream(dir / "model_index.json") << R"({"_class_name": "StableDiffusionPipeline"})";
  auto status = OpenDiffusersFolder(dir.string()).status();
  EXPECT_NE(status.message().find("StableDiffusionPipeline"), std::string::npos) << status;

  std::ofstream(dir / "model_index.json")
      << R"({"_class_name": "StableDiffusionXLPipeline", "text_encoder": ["transformers", "CLIPTextModel"]})";
  status = OpenDiffusersFolder(dir.string()).status();
  EXPECT_NE(status.message().find("'text_encoder'"), std::string::npos) << status;  // no folder

  fs::create_directories(dir / "text_encoder");
  status = OpenDiffusersFolder(dir.string()).status();
  EXPECT_NE(status.message().find("'text_encoder_2' is missing"), std::string::npos) << status;

  std::ofstream(dir / "model_index.json")
      << R"({"_class_name": "StableDiffusionXLPipeline", "text_encoder": ["transformers", "T5EncoderModel"]})";
  status = OpenDiffusersFolder(dir.string()).status();
  EXPECT_NE(status.message().find("'T5EncoderModel'"), std::string::npos) << status;
}

}  // namespace
}  // namespace tlcm
