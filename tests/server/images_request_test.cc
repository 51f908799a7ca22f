// The HTTP front door's conversions without a server: the images request body to the gRPC
// GenerateRequest (server/http/images_request.h), the model list (openai_json.h) and the error
// "param" (http_error.h), for the style adapter fields.
#include "server/http/images_request.h"

#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/http/http_error.h"
#include "server/http/openai_json.h"

namespace tlcm::server {
namespace {

using nlohmann::json;

absl::StatusOr<ImagesRequest> ParseWithLoras(const std::string& loras) {
  return ParseImagesRequest(
      absl::StrCat(R"({"model": "m", "prompt": "a red cube", "loras": )", loras, "}"));
}

// The error of a body that must fail, after checking that it names `field`.
std::string ErrorNaming(const std::string& loras, const std::string& field) {
  absl::StatusOr<ImagesRequest> parsed = ParseWithLoras(loras);
  EXPECT_FALSE(parsed.ok()) << loras;
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(parsed.status().message(), field + ": "))
      << loras << " -> " << parsed.status();
  EXPECT_EQ(json::parse(ToHttpError(parsed.status()).body)["error"]["param"], field);
  return std::string(parsed.status().message());
}

TEST(ImagesRequestTest, LorasBecomeTheRequestsLoraWeightsInOrder) {
  absl::StatusOr<ImagesRequest> parsed =
      ParseWithLoras(R"([{"name": "ink", "scale": 0.6}, {"name": "clay", "scale": -1.5},
                         {"name": "glow", "scale": 0}])");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const tlcm::v1::GenerateRequest& request = parsed->request;
  ASSERT_EQ(request.loras_size(), 3);
  EXPECT_EQ(request.loras(0).name(), "ink");
  EXPECT_FLOAT_EQ(request.loras(0).scale(), 0.6f);
  EXPECT_EQ(request.loras(1).name(), "clay");
  EXPECT_FLOAT_EQ(request.loras(1).scale(), -1.5f);
  EXPECT_EQ(request.loras(2).name(), "glow");
  EXPECT_EQ(request.loras(2).scale(), 0.0f);  // 0 is kept, not taken as "absent"
}

TEST(ImagesRequestTest, AScaleLeftOutIsOneAsOnTheCommandLines) {
  absl::StatusOr<ImagesRequest> parsed = ParseWithLoras(R"([{"name": "ink"}, {"name": "clay",
                                                              "scale": null}])");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->request.loras_size(), 2);
  EXPECT_EQ(parsed->request.loras(0).scale(), 1.0f);
  EXPECT_EQ(parsed->request.loras(1).scale(), 1.0f);
}

TEST(ImagesRequestTest, NoLorasMeansNone) {
  for (const char* loras : {"[]", "null"}) {
    absl::StatusOr<ImagesRequest> parsed = ParseWithLoras(loras);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->request.loras_size(), 0) << loras;
  }
  absl::StatusOr<ImagesRequest> parsed = ParseImagesRequest(R"({"model": "m", "prompt": "x"})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->request.loras_size(), 0);
}

TEST(ImagesRequestTest, MalformedLorasAreRefusedNamingTheEntry) {
  EXPECT_TRUE(absl::StrContains(ErrorNaming(R"({"name": "ink"})", "loras"), "array"));
  EXPECT_TRUE(absl::StrContains(ErrorNaming(R"("ink:0.5")", "loras"), "array"));
  EXPECT_TRUE(absl::StrContains(ErrorNaming(R"([{"name": "ink"}, "clay"])", "loras[1]"),
                                "must be an object"));
  EXPECT_TRUE(absl::StrContains(ErrorNaming(R"([{"scale": 1}])", "loras[0].name"), "required"));
  EXPECT_TRUE(absl::StrContains(ErrorNaming(R"([{"name": 7}])", "loras[0].name"), "string"));
  EXPECT_TRUE(absl::StrContains(
      ErrorNaming(R"([{"name": "ink"}, {"name": "clay", "scale": "0.5"}])", "loras[1].scale"),
      "must be a number"));
  EXPECT_TRUE(absl::StrContains(
      ErrorNaming(R"([{"name": "ink", "scale": true}])", "loras[0].scale"), "must be a number"));
  // A key of another API (a path, a weight) is refused rather than silently ignored.
  const std::string unknown = ErrorNaming(R"([{"name": "ink", "weight": 0.5}])", "loras[0]");
  EXPECT_TRUE(absl::StrContains(unknown, "\"weight\"")) << unknown;
  // A long unknown key is repeated only in part.
  const std::string long_key(5000, 'k');
  EXPECT_LT(ErrorNaming(absl::StrCat(R"([{")", long_key, R"(": 1}])"), "loras[0]").size(), 300u);
}

TEST(ImagesRequestTest, ScalesBeyondFloatRangeBecomeInfinitiesForTheEngineToRefuse) {
  absl::StatusOr<ImagesRequest> parsed =
      ParseWithLoras(R"([{"name": "ink", "scale": 1e300}, {"name": "clay", "scale": -1e300}])");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->request.loras(0).scale(), std::numeric_limits<float>::infinity());
  EXPECT_EQ(parsed->request.loras(1).scale(), -std::numeric_limits<float>::infinity());
}

TEST(ImagesRequestTest, ModelListShowsAdaptersOfReadyModels) {
  engine::ModelStatus ready;
  ready.info.name = "sdxl";
  ready.info.max_loras = 4;
  ready.ready = true;
  engine::ModelStatus loading;
  loading.info.name = "flux";
  std::vector<std::string> asked;
  const json models = json::parse(ModelsJson({ready, loading}, [&](const std::string& model) {
    asked.push_back(model);
    return std::vector<std::string>{"clay", "ink"};
  }));
  ASSERT_EQ(models["data"].size(), 2u);
  const json& tlcm = models["data"][0]["tlcm"];
  EXPECT_EQ(tlcm["adapters"], json({"clay", "ink"}));
  EXPECT_EQ(tlcm["max_loras"], 4);
  EXPECT_FALSE(models["data"][1]["tlcm"].contains("adapters"));  // still loading
  EXPECT_EQ(asked, std::vector<std::string>{"sdxl"});
}

TEST(ImagesRequestTest, EngineMessagesAboutAnEntryNameItAsParam) {
  const HttpError error = ToHttpError(
      absl::InvalidArgumentError("loras[1].scale: 12 is not a number in [-8, 8] (adapter \"x\")"));
  EXPECT_EQ(error.http_status, 400);
  EXPECT_EQ(json::parse(error.body)["error"]["param"], "loras[1].scale");
  // Text that is no field path gives no param.
  const json other = json::parse(ToHttpError(absl::InvalidArgumentError("bad (x): y")).body);
  EXPECT_TRUE(other["error"]["param"].is_null());
}

}  // namespace
}  // namespace tlcm::server
