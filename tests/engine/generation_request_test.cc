// ValidateRequest: defaults are filled in, and every rule answers INVALID_ARGUMENT naming the
// field and the rule.
#include "engine/generation_request.h"

#include <cmath>
#include <limits>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/engine/fake_pipeline.h"

namespace tlcm::engine {
namespace {

using ::testing::HasSubstr;

class ValidateRequestTest : public ::testing::Test {
 protected:
  ValidateRequestTest() {
    ModelSpec spec;
    spec.name = "m";
    info_ = testing::FakeModelInfo(spec);
    info_.default_guidance_scale = 3.5f;
    request_.model = "m";
    request_.prompt = "a cat";
  }

  // Expects INVALID_ARGUMENT with a message starting with `field` and containing `rule`.
  void ExpectInvalid(const std::string& field, const std::string& rule) {
    auto resolved = ValidateRequest(request_, info_, limits_);
    ASSERT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument) << resolved.status();
    EXPECT_EQ(resolved.status().message().substr(0, field.size() + 1), field + ":")
        << resolved.status();
    EXPECT_THAT(std::string(resolved.status().message()), HasSubstr(rule));
  }

  ModelInfo info_;
  RequestLimits limits_;
  GenerationRequest request_;
};

TEST_F(ValidateRequestTest, FillsInTheModelsDefaults) {
  auto resolved = ValidateRequest(request_, info_, limits_);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->key.model, "m");
  EXPECT_EQ(resolved->key.steps, 4);
  EXPECT_EQ(resolved->key.width, 64);
  EXPECT_EQ(resolved->key.height, 64);
  EXPECT_EQ(resolved->key.sampler, "lcm");
  EXPECT_FLOAT_EQ(resolved->guidance_scale, 3.5f);
  EXPECT_EQ(resolved->quality, kDefaultImageQuality);
}

TEST_F(ValidateRequestTest, KeepsExplicitValues) {
  request_.steps = 8;
  request_.width = 128;
  request_.height = 32;
  request_.sampler = "tlcm";
  request_.guidance_scale = 0.0f;
  request_.quality = 55;
  request_.format = ImageFormat::kWebp;
  auto resolved = ValidateRequest(request_, info_, limits_);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->key, (BatchKey{"m", 8, 128, 32, "tlcm"}));
  EXPECT_FLOAT_EQ(resolved->guidance_scale, 0.0f);
  EXPECT_EQ(resolved->quality, 55);
}

TEST_F(ValidateRequestTest, ImageInputsSetSizeAndStrength) {
  const auto picture = [](int width, int height) {
    return std::make_shared<const RgbImage>(
        RgbImage{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3, 9)});
  };
  request_.image = picture(70, 45);
  auto resolved = ValidateRequest(request_, info_, limits_);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->key.width, 64);  // the image's size, down to the size multiple 8
  EXPECT_EQ(resolved->key.height, 40);
  EXPECT_DOUBLE_EQ(resolved->key.strength, DefaultStrength(false));
  EXPECT_FALSE(resolved->key.masked);
  request_.mask = picture(70, 45);
  request_.width = 32;
  resolved = ValidateRequest(request_, info_, limits_);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->key.width, 32);
  EXPECT_DOUBLE_EQ(resolved->key.strength, DefaultStrength(true));
  EXPECT_TRUE(resolved->key.masked);
}

TEST_F(ValidateRequestTest, ImageInputRulesNameTheField) {
  const auto picture = [](int width, int height) {
    return std::make_shared<const RgbImage>(
        RgbImage{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3, 9)});
  };
  request_.mask = picture(8, 8);
  ExpectInvalid("mask", "needs an image");
  request_.mask = nullptr;
  request_.strength = 0.5;
  ExpectInvalid("strength", "needs an image");
  request_.image = picture(70, 45);
  request_.mask = picture(70, 44);
  ExpectInvalid("mask", "70x44 differs from the image's 70x45");
  request_.mask = nullptr;
  request_.strength = 0.0;
  ExpectInvalid("strength", "outside (0, 1]");
  request_.strength = 1.5;
  ExpectInvalid("strength", "outside (0, 1]");
  request_.steps = 4;
  request_.strength = 0.2;  // SDXL runs floor(4 * 0.2) = 0 steps
  ExpectInvalid("strength", "runs no step");
  info_.family = "flux";  // FLUX rounds the other way: 1 step
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
  request_.strength.reset();
  request_.image = picture(1024, 257);  // > 4 x 256 x 256 pixels (FakeModelInfo's max_pixels)
  ExpectInvalid("image", "exceeds 4 times the model's max_pixels");
  request_.image = picture(5, 60);
  ExpectInvalid("image", "smaller than the model's size multiple");

  // An inpainting model takes only requests with an image and a mask.
  info_.needs_mask = true;
  request_.image = nullptr;
  ExpectInvalid("image", "inpainting model");
  request_.image = picture(64, 64);
  ExpectInvalid("mask", "inpainting model");
  request_.mask = picture(64, 64);
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
}

TEST_F(ValidateRequestTest, PromptMustHaveText) {
  request_.prompt = "";
  ExpectInvalid("prompt", "visible character");
  request_.prompt = " \t\n";
  ExpectInvalid("prompt", "visible character");
  // Unicode white space and invisible format characters count as nothing: U+3000, U+00A0,
  // U+2028, U+200B, U+FEFF.
  for (const char* blank : {"\u3000", "\u00a0\u00a0", "\u2028", " \u200b\ufeff\u3000 "}) {
    request_.prompt = blank;
    ExpectInvalid("prompt", "visible character");
  }
  request_.prompt = "\u3000\u732b\u3000";  // a cat (in Chinese) between ideographic spaces
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
}

TEST_F(ValidateRequestTest, PromptsMustBeValidUtf8) {
  for (const char* broken : {"a \xff cat", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                             "\x80\x61\x62\x63" /* a stray continuation byte, then "abc" */}) {
    request_.prompt = broken;
    ExpectInvalid("prompt", "is not valid UTF-8");
  }
  request_.prompt = "caf\u00e9 \U0001f431";  // two- and four-byte sequences are fine
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
  request_.prompt_2 = "\xe2\x82";
  ExpectInvalid("prompt_2", "is not valid UTF-8");
}

TEST_F(ValidateRequestTest, PromptsHaveAByteLimit) {
  limits_.max_prompt_bytes = 10;
  request_.prompt = std::string(10, 'a');
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
  request_.prompt = std::string(11, 'a');
  ExpectInvalid("prompt", "11 bytes exceed the limit of 10 bytes");
  request_.prompt = "ok";
  request_.prompt_2 = std::string(11, 'b');
  ExpectInvalid("prompt_2", "exceed the limit");
}

TEST_F(ValidateRequestTest, StepsMustBeInTheModelsRange) {
  for (int steps : {2, 8}) {
    request_.steps = steps;
    EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok()) << steps;
  }
  request_.steps = 1;
  ExpectInvalid("steps", "1 is outside the model's range [2, 8]");
  request_.steps = 9;
  ExpectInvalid("steps", "9 is outside");
  request_.steps = -3;
  ExpectInvalid("steps", "outside");
}

TEST_F(ValidateRequestTest, SidesMustBePositiveMultiplesOfTheGranularity) {
  request_.width = 60;
  ExpectInvalid("width", "60 is not a positive multiple of 8");
  request_.width = -8;
  ExpectInvalid("width", "not a positive multiple");
  request_.width = 64;
  request_.height = 65;
  ExpectInvalid("height", "not a positive multiple of 8");
}

TEST_F(ValidateRequestTest, PixelCountIsLimited) {
  request_.width = 256;
  request_.height = 256;
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
  request_.height = 264;
  ExpectInvalid("width x height", "exceed the model's limit of 65536");
}

TEST_F(ValidateRequestTest, ImageCountIsLimited) {
  limits_.max_images_per_request = 3;
  request_.num_images = 3;
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
  request_.num_images = 4;
  ExpectInvalid("num_images", "4 is outside [1, 3]");
  request_.num_images = 0;
  ExpectInvalid("num_images", "0 is outside");
}

TEST_F(ValidateRequestTest, GuidanceMustBeFiniteAndInRange) {
  limits_.min_guidance_scale = 0;
  limits_.max_guidance_scale = 10;
  request_.guidance_scale = 10.0f;
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
  request_.guidance_scale = 10.5f;
  ExpectInvalid("guidance_scale", "outside [0, 10]");
  request_.guidance_scale = -1.0f;
  ExpectInvalid("guidance_scale", "outside");
  request_.guidance_scale = std::numeric_limits<float>::quiet_NaN();
  ExpectInvalid("guidance_scale", "outside");
}

TEST_F(ValidateRequestTest, SamplerMustBeOneOfTheModels) {
  request_.sampler = "euler";
  ExpectInvalid("sampler", "\"euler\" is not one of the model's samplers (lcm, tlcm)");
  // A huge or binary value is cut and escaped, never echoed whole.
  request_.sampler = std::string(1 << 20, 'x') + "\n";
  auto resolved = ValidateRequest(request_, info_, limits_);
  EXPECT_LT(resolved.status().message().size(), 200u);
  EXPECT_THAT(std::string(resolved.status().message()), HasSubstr("...(1048577 bytes)"));
  request_.sampler = "e\x01\"\xff";
  ExpectInvalid("sampler", "\"e\\x01\\\"\\xff\" is not one of");
}

TEST_F(ValidateRequestTest, FormatAndQualityRanges) {
  request_.format = static_cast<ImageFormat>(7);
  ExpectInvalid("format", "not one of png, jpeg, webp");
  request_.format = ImageFormat::kJpeg;
  for (int quality : {1, 100}) {
    request_.quality = quality;
    EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
  }
  request_.quality = 101;
  ExpectInvalid("quality", "101 is outside [1, 100]");
  request_.quality = -1;
  ExpectInvalid("quality", "outside");
}

TEST_F(ValidateRequestTest, ClientRequestIdIsLimited) {
  request_.client_request_id = std::string(kMaxClientRequestIdBytes, 'x');
  EXPECT_TRUE(ValidateRequest(request_, info_, limits_).ok());
  request_.client_request_id += "x";
  ExpectInvalid("client_request_id", "exceed the limit of 128 bytes");
}

}  // namespace
}  // namespace tlcm::engine
