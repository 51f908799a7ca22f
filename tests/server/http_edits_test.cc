// POST /v1/images/edits: the multipart form -> GenerateRequest conversion and its errors, and the
// route end to end over the fake pipelines (cpp-httplib's client and raw sockets). The openai
// package's images.edit is tested by tests/server/http_openai_test.py.
#include <httplib.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "image/png_codec.h"
#include "image/png_writer.h"
#include "server/http/edits_request.h"
#include "tests/engine/fake_pipeline.h"
#include "tests/server/http_error_answer.h"
#include "tests/server/http_exchange.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

using nlohmann::json;

std::string Png(int width, int height, uint8_t value = 90) {
  return *EncodePng(RgbImage{width, height,
                             std::vector<uint8_t>(static_cast<size_t>(width) * height * 3, value)});
}

httplib::MultipartFormDataMap Form(const std::vector<httplib::MultipartFormData>& parts) {
  httplib::MultipartFormDataMap form;
  for (const httplib::MultipartFormData& part : parts) form.emplace(part.name, part);
  return form;
}

httplib::MultipartFormData File(const std::string& name, const std::string& content) {
  return {name, content, name + ".png", "image/png"};
}
httplib::MultipartFormData Text(const std::string& name, const std::string& value) {
  return {name, value, "", ""};
}

TEST(EditsRequestTest, TurnsTheFormIntoAGenerateRequest) {
  const std::string image = Png(8, 8), mask = Png(8, 8, 255);
  auto parsed = server::ParseEditsRequest(
      Form({File("image[]", image), File("mask", mask), Text("model", "fake"), Text("prompt", "42"),
            Text("n", "2"), Text("size", "64x48"), Text("seed", "18446744073709551615"),
            Text("steps", "3"), Text("strength", "0.75"), Text("guidance_scale", "3.5"),
            Text("response_format", "b64_json"), Text("stream", "true"), Text("quality", "high")}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const tlcm::v1::GenerateRequest& request = parsed->request;
  EXPECT_EQ(request.image(), image);
  EXPECT_EQ(request.mask(), mask);
  EXPECT_EQ(request.model(), "fake");
  EXPECT_EQ(request.prompt(), "42");  // a prompt stays text even when it reads as a number
  EXPECT_EQ(request.num_images(), 2);
  EXPECT_EQ(request.width(), 64);
  EXPECT_EQ(request.height(), 48);
  EXPECT_EQ(request.seed(), 18446744073709551615u);
  EXPECT_EQ(request.steps(), 3);
  EXPECT_DOUBLE_EQ(request.strength(), 0.75);
  EXPECT_FLOAT_EQ(request.guidance_scale(), 3.5f);
  EXPECT_TRUE(parsed->stream);

  parsed = server::ParseEditsRequest(
      Form({File("image", image), Text("model", "fake"), Text("prompt", "x")}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->request.has_strength());
  EXPECT_TRUE(parsed->request.mask().empty());
  EXPECT_FALSE(parsed->stream);
}

TEST(EditsRequestTest, ErrorsNameThePart) {
  const std::string image = Png(8, 8);
  const std::vector<std::pair<std::vector<httplib::MultipartFormData>, std::string>> cases = {
      {{Text("model", "fake"), Text("prompt", "x")}, "image: is required"},
      {{File("image[]", image), File("image[]", image), Text("model", "fake"), Text("prompt", "x")},
       "image: one input image per request, got 2"},
      {{File("image", image), File("mask", image), File("mask", image), Text("model", "fake"),
        Text("prompt", "x")},
       "mask: given more than once"},
      {{File("image", image), Text("model", "fake"), Text("prompt", "x"), Text("prompt", "y")},
       "prompt: given more than once"},
      {{File("image", image), Text("model", "fake"), Text("prompt", "x"), Text("a\nb", "1"),
        Text("a\nb", "2")},
       "\"a\\nb\": given more than once"},
      {{File("image", image), Text("model", "fake"), Text("prompt", "x"), Text("n", "two")},
       "n: must be an integer"},
      {{File("image", image), Text("model", "fake"), Text("prompt", "x"), Text("strength", "½")},
       "strength: must be a number"},
      {{File("image", image), Text("model", "fake"), Text("prompt", "x"), Text("stream", "yes")},
       "stream: must be true or false"},
      {{File("image", image), Text("prompt", "x")}, "model: is required"},
      {{File("image", image), Text("model", "fake"), Text("prompt", "x"),
        Text("response_format", "url")},
       "response_format: \"url\" is not supported"},
  };
  for (const auto& [parts, message] : cases) {
    auto parsed = server::ParseEditsRequest(Form(parts));
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_TRUE(absl::StartsWith(parsed.status().message(), message)) << parsed.status();
  }
}

tlcm::v1::ServerConfig HttpConfig() {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_http_port(0);
  config.set_http_listen_address("127.0.0.1");
  config.set_http_io_timeout_seconds(2);
  return config;
}

httplib::Result Edit(httplib::Client& client, const httplib::MultipartFormDataItems& items) {
  return client.Post("/v1/images/edits", items);
}

TEST(HttpEditsTest, EditsAnImageAndNamesTheFieldOfEachError) {
  tlcm::v1::ServerConfig config = HttpConfig();
  config.set_http_max_body_bytes(64 * 1024);
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  httplib::Client client("127.0.0.1", server.server().http_port());
  client.set_read_timeout(20);
  const httplib::MultipartFormDataItems base = {
      {"model", "fake", "", ""}, {"prompt", "a red cube", "", ""}, {"strength", "0.5", "", ""}};
  const auto with = [&](std::vector<httplib::MultipartFormData> parts) {
    httplib::MultipartFormDataItems items = base;
    items.insert(items.end(), parts.begin(), parts.end());
    return items;
  };

  // The output size defaults to the image's, rounded down to the model's size multiple (8).
  auto result = Edit(client, with({{"image", Png(48, 41), "in.png", "image/png"},
                                   {"mask", Png(48, 41, 255), "mask.png", "image/png"},
                                   {"n", "2", "", ""},
                                   {"seed", "7", "", ""}}));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  json body = json::parse(result->body);
  EXPECT_EQ(body["size"], "48x40");
  ASSERT_EQ(body["data"].size(), 2u);
  std::string png;
  ASSERT_TRUE(absl::Base64Unescape(body["data"][1]["b64_json"].get<std::string>(), &png));
  auto image = DecodePng(png);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, 48);
  EXPECT_EQ(image->height, 40);
  EXPECT_EQ(engine::testing::SeedOfFakeImage(*image), 8u);

  // Streamed like a generation.
  result = Edit(client,
                with({{"image", Png(64, 64), "in.png", "image/png"}, {"stream", "true", "", ""}}));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_TRUE(absl::StrContains(result->body, "event: image_generation.completed"));

  const std::vector<std::pair<httplib::MultipartFormDataItems, std::string>> refused = {
      {base, "image"},
      {with({{"image", "not a picture", "in.png", "image/png"}}), "image"},
      {with({{"image", Png(64, 64), "in.png", "image/png"},
             {"mask", Png(32, 32), "mask.png", "image/png"}}),
       "mask"},
      {with({{"image", Png(64, 64), "in.png", "image/png"}, {"strength", "1.5", "", ""}}),
       "strength"},
      {with({{"image", Png(64, 64), "in.png", "image/png"}, {"steps", "12", "", ""}}), "steps"},
  };
  for (const auto& [items, param] : refused) {
    const json error = ErrorOf(Edit(client, items), 400);
    EXPECT_EQ(error["param"], param) << error;
    EXPECT_EQ(error["type"], "invalid_request_error");
  }

  // Not a form: 400 naming the body. An input image in a JSON generation: 400 naming it.
  json error = ErrorOf(
      client.Post("/v1/images/edits", R"({"model": "fake", "prompt": "x"})", "application/json"),
      400);
  EXPECT_EQ(error["param"], "body");
  error = ErrorOf(
      client.Post("/v1/images/generations", R"({"model": "fake", "prompt": "x", "image": "aGk="})",
                  "application/json"),
      400);
  EXPECT_EQ(error["param"], "image");
  EXPECT_TRUE(absl::StrContains(error["message"].get<std::string>(), "/v1/images/edits"));

  // Over the body limit: 413.
  error = ErrorOf(
      Edit(client, with({{"image", std::string(70 * 1024, 'x'), "in.png", "image/png"}})), 413);
  EXPECT_EQ(error["code"], "payload_too_large");

  // Malformed multipart bodies: an error answer, never a crash.
  for (const std::string& form : {std::string("--b\r\nContent-Disposition: form-data\r\n\r\nx"),
                                  std::string("garbage without a boundary"),
                                  std::string("--b\r\nContent-Disposition: form-data; name=\"image"
                                              "\"\r\n\r\n\x89PNG\r\n--b-")}) {
    const HttpResponse answer = HttpExchange(
        server.server().http_port(),
        absl::StrCat("POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: ",
                     form.size(), "\r\n\r\n", form));
    EXPECT_EQ(answer.status, 400) << answer.headers << answer.body;
  }
  result = Edit(client, with({{"image", Png(64, 64), "in.png", "image/png"}}));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200) << result->body;
}

}  // namespace
}  // namespace tlcm::testing
