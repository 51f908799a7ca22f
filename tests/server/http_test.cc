// The HTTP front door end to end (server/http): a real server on ephemeral loopback ports over
// the fake pipelines, cpp-httplib's client and raw sockets. The OpenAI Python package is tested
// against the fake server by scripts/http_openai_test.py; load and abuse by
// scripts/http_load_test.py.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "image/png_codec.h"
#include "tests/server/http_error_answer.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

using nlohmann::json;

tlcm::v1::ServerConfig HttpConfig() {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_http_port(0);
  config.set_http_listen_address("127.0.0.1");
  config.set_http_io_timeout_seconds(2);  // a drain waits this long for idle connections
  return config;
}

httplib::Client ClientOf(TestServer& server) {
  httplib::Client client("127.0.0.1", server.server().http_port());
  client.set_read_timeout(20);
  return client;
}

std::string GenerationBody(const std::string& extra = "") {
  return absl::StrCat(R"({"model": "fake", "prompt": "a red cube", "size": "64x64", "steps": 4)",
                      extra, "}");
}

// POSTs `body` to /v1/images/generations.
httplib::Result Generate(httplib::Client& client, const std::string& body,
                         const httplib::Headers& headers = {}) {
  return client.Post("/v1/images/generations", headers, body, "application/json");
}

struct SseEvent {
  std::string type;
  json data;
};

std::vector<SseEvent> ParseSse(const std::string& text) {
  std::vector<SseEvent> events;
  for (absl::string_view block : absl::StrSplit(text, "\n\n", absl::SkipEmpty())) {
    SseEvent event;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, "event: ")) event.type = std::string(line);
      if (absl::ConsumePrefix(&line, "data: ")) event.data = json::parse(line, nullptr, false);
    }
    events.push_back(std::move(event));
  }
  return events;
}

// A raw loopback connection that sends `request` and stays open until destroyed.
class RawConnection {
 public:
  RawConnection(int port, const std::string& request) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(send(fd_, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
  }
  ~RawConnection() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  // Reads until `text` has arrived (or the peer closed); what arrived.
  std::string ReadUntil(const std::string& text) {
    std::string received;
    char buffer[4096];
    while (!absl::StrContains(received, text)) {
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      received.append(buffer, static_cast<size_t>(n));
    }
    return received;
  }

 private:
  int fd_ = -1;
};

std::string PostRequest(const std::string& body) {
  return absl::StrCat("POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: ",
                      "application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

TEST(HttpTest, ListsModelsInOpenAIShape) {
  TestServer server(HttpConfig());
  ASSERT_TRUE(server.ok());
  ASSERT_GT(server.server().http_port(), 0);
  auto client = ClientOf(server);
  auto result = client.Get("/v1/models");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  const json body = json::parse(result->body);
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 1u);
  const json& model = body["data"][0];
  EXPECT_EQ(model["id"], "fake");
  EXPECT_EQ(model["object"], "model");
  EXPECT_EQ(model["owned_by"], "tlcm-serve");
  EXPECT_EQ(model["tlcm"]["default_steps"], 4);
  EXPECT_EQ(model["tlcm"]["max_steps"], 8);
  EXPECT_EQ(model["tlcm"]["default_width"], 64);
  EXPECT_EQ(model["tlcm"]["samplers"][0], "lcm");
}

TEST(HttpTest, ServesThePlaygroundPageEmbeddedInTheBinary) {
  TestServer server(HttpConfig());
  ASSERT_TRUE(server.ok());
  auto client = ClientOf(server);
  auto result = client.Get("/");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/html; charset=utf-8");
  std::ifstream file(std::string(TLCM_SOURCE_DIR) + "/server/http/playground/index.html",
                     std::ios::binary);
  const std::string page((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(page.empty());
  EXPECT_EQ(result->body, page);
}

TEST(HttpTest, GeneratesBase64ImagesWithMetrics) {
  TestServer server(HttpConfig());
  ASSERT_TRUE(server.ok());
  auto client = ClientOf(server);
  auto result = Generate(client, GenerationBody(R"(, "n": 2, "seed": 42, "user": "u1")"));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_FALSE(result->get_header_value("X-Request-Id").empty());
  const json body = json::parse(result->body);
  EXPECT_GT(body["created"].get<int64_t>(), 1'700'000'000);
  EXPECT_EQ(body["output_format"], "png");
  EXPECT_EQ(body["size"], "64x64");
  EXPECT_EQ(body["tlcm"]["model"], "fake");
  EXPECT_EQ(body["tlcm"]["steps"], 4);
  EXPECT_EQ(body["tlcm"]["seed"], 42);
  for (const char* field : {"queue_ms", "denoise_ms", "total_ms", "batch_size", "device"}) {
    EXPECT_TRUE(body["tlcm"]["metrics"].contains(field)) << field;
  }
  ASSERT_EQ(body["data"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(body["data"][i]["tlcm_seed"], 42 + i);
    std::string png;
    ASSERT_TRUE(absl::Base64Unescape(body["data"][i]["b64_json"].get<std::string>(), &png));
    auto image = DecodePng(png);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->width, 64);
    EXPECT_EQ(image->height, 64);
    EXPECT_EQ(engine::testing::SeedOfFakeImage(*image), 42u + i);
  }
}

TEST(HttpTest, DefaultsComeFromTheModel) {
  TestServer server(HttpConfig());
  ASSERT_TRUE(server.ok());
  auto client = ClientOf(server);
  auto result = Generate(client, R"({"model": "fake", "prompt": "x", "output_format": "jpeg",
                                     "output_compression": 50})");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const json body = json::parse(result->body);
  EXPECT_EQ(body["tlcm"]["steps"], 4);
  EXPECT_EQ(body["size"], "64x64");
  EXPECT_EQ(body["output_format"], "jpeg");
  ASSERT_EQ(body["data"].size(), 1u);
}

TEST(HttpTest, BadRequestsGetOpenAIErrorsNamingTheField) {
  tlcm::v1::ServerConfig config = HttpConfig();
  config.set_http_max_body_bytes(4096);
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  auto client = ClientOf(server);

  json error = ErrorOf(Generate(client, GenerationBody(R"(, "response_format": "url")")), 400);
  EXPECT_EQ(error["param"], "response_format");
  EXPECT_EQ(error["type"], "invalid_request_error");
  EXPECT_TRUE(absl::StrContains(error["message"].get<std::string>(), "b64_json"));

  error = ErrorOf(Generate(client, "{\"model\": \"fake\", \"prompt\": "), 400);
  EXPECT_EQ(error["param"], "body");
  error = ErrorOf(Generate(client, "[1, 2]"), 400);
  EXPECT_EQ(error["param"], "body");
  error = ErrorOf(Generate(client, GenerationBody(R"(, "n": "two")")), 400);
  EXPECT_EQ(error["param"], "n");
  error = ErrorOf(Generate(client, GenerationBody(R"(, "n": 99)")), 400);
  EXPECT_EQ(error["param"], "n") << error;
  error = ErrorOf(Generate(client, GenerationBody(R"(, "seed": -1)")), 400);
  EXPECT_EQ(error["param"], "seed");
  error = ErrorOf(Generate(client, GenerationBody(R"(, "stream": "yes")")), 400);
  EXPECT_EQ(error["param"], "stream");
  error = ErrorOf(Generate(client, R"({"model": "fake", "prompt": "x", "steps": 12})"), 400);
  EXPECT_EQ(error["param"], "steps");
  EXPECT_TRUE(absl::StrContains(error["message"].get<std::string>(), "[2, 8]")) << error;
  error = ErrorOf(Generate(client, R"({"model": "fake", "prompt": "x", "size": "64by64"})"), 400);
  EXPECT_EQ(error["param"], "size");
  error = ErrorOf(Generate(client, R"({"model": "fake", "prompt": "x", "size": "60x64"})"), 400);
  EXPECT_EQ(error["param"], "size") << error;
  error = ErrorOf(Generate(client, R"({"model": "fake", "prompt": "x",
                                      "output_format": "gif"})"),
                  400);
  EXPECT_EQ(error["param"], "output_format");
  error = ErrorOf(Generate(client, R"({"prompt": "x"})"), 400);
  EXPECT_EQ(error["param"], "model");

  // Unknown model: 404, and the model name repeated only in a bounded form.
  const std::string long_name(3000, 'm');
  error = ErrorOf(
      Generate(client, absl::StrCat(R"({"model": ")", long_name, R"(", "prompt": "x"})")), 404);
  EXPECT_LT(error["message"].get<std::string>().size(), 300u);

  // A body over the limit: 413 without reading it.
  error = ErrorOf(Generate(client, GenerationBody(absl::StrCat(R"(, "user": ")",
                                                               std::string(8000, 'u'), "\""))),
                  413);
  EXPECT_EQ(error["code"], "payload_too_large");

  error = ErrorOf(client.Get("/v2/nothing"), 404);
  EXPECT_TRUE(absl::StrContains(error["message"].get<std::string>(), "/v2/nothing"));

  // The server is unharmed.
  auto ok = Generate(client, GenerationBody());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpTest, StyleAdaptersReachTheImagesAndTheModelList) {
  tlcm::v1::ServerConfig config = HttpConfig();
  config.mutable_models(0)->set_adapter_folder("/nonexistent/fake-adapters");  // never read
  config.mutable_models(0)->set_max_loras(2);
  auto control = NewFakePipelineControl();
  control->SetAdapters("fake", {"ink", "clay"});
  TestServer server(config, /*wait_ready=*/true, control);
  ASSERT_TRUE(server.ok());
  auto client = ClientOf(server);

  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  const json model = json::parse(models->body)["data"][0];
  EXPECT_EQ(model["tlcm"]["adapters"], json({"clay", "ink"}));
  EXPECT_EQ(model["tlcm"]["max_loras"], 2);

  auto result = Generate(
      client, GenerationBody(R"(, "loras": [{"name": "ink", "scale": 0.8}, {"name": "clay"}])"));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const auto runs = control->request_runs();
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_EQ(runs[0].jobs.size(), 1u);
  const std::vector<engine::LoraChoice>& loras = runs[0].jobs[0].loras;
  ASSERT_EQ(loras.size(), 2u);
  EXPECT_EQ(loras[0].name, "ink");
  EXPECT_FLOAT_EQ(loras[0].scale, 0.8f);
  EXPECT_EQ(loras[1].name, "clay");
  EXPECT_EQ(loras[1].scale, 1.0f);

  // The engine's rules, answered with the entry as "param"; an unknown adapter is a 404.
  json error = ErrorOf(
      Generate(client, GenerationBody(R"(, "loras": [{"name": "ink", "scale": 12}])")), 400);
  EXPECT_EQ(error["param"], "loras[0].scale");
  error = ErrorOf(Generate(client, GenerationBody(R"(, "loras": [{"name": "ink"},
                                                   {"name": "ink"}])")),
                  400);
  EXPECT_EQ(error["param"], "loras[1].name");
  error = ErrorOf(Generate(client, GenerationBody(R"(, "loras": [{"name": "a"}, {"name": "b"},
                                                   {"name": "c"}])")),
                  400);
  EXPECT_EQ(error["param"], "loras");
  error = ErrorOf(Generate(client, GenerationBody(R"(, "loras": [{"name": "watercolor"}])")), 404);
  EXPECT_TRUE(absl::StrContains(error["message"].get<std::string>(), "watercolor")) << error;
  EXPECT_EQ(control->request_runs().size(), 1u);  // none of them ran
}

TEST(HttpTest, StreamsProgressPreviewsImagesAndMetrics) {
  TestServer server(HttpConfig());
  ASSERT_TRUE(server.ok());
  auto client = ClientOf(server);
  auto result = Generate(
      client, GenerationBody(R"(, "n": 2, "seed": 7, "stream": true, "partial_images": 1)"));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_TRUE(absl::StartsWith(result->get_header_value("Content-Type"), "text/event-stream"));
  const std::vector<SseEvent> events = ParseSse(result->body);
  ASSERT_FALSE(events.empty());
  std::vector<std::string> kinds;
  int partial = 0;
  int completed = 0;
  for (const SseEvent& event : events) {
    EXPECT_EQ(event.data["type"], event.type);
    if (kinds.empty() || kinds.back() != event.type) kinds.push_back(event.type);
    if (event.type == "image_generation.partial_image") {
      EXPECT_EQ(event.data["partial_image_index"], partial++);
      EXPECT_EQ(event.data["size"], "8x8");
      EXPECT_FALSE(event.data["b64_json"].get<std::string>().empty());
    }
    if (event.type == "image_generation.completed") {
      ++completed;
      EXPECT_EQ(event.data["size"], "64x64");
      EXPECT_EQ(event.data["output_format"], "png");
      EXPECT_EQ(event.data["tlcm_seed"], 7 + event.data["tlcm_image_index"].get<int>());
    }
  }
  EXPECT_EQ(partial, 6);  // after each step but the last (4 steps) x 2 images
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(kinds.front(), "tlcm.queued");
  EXPECT_EQ(kinds[1], "tlcm.started");
  EXPECT_EQ(events.back().type, "tlcm.metrics");
  EXPECT_EQ(events.back().data["metrics"]["batch_size"], 2);
  int progress = 0;
  for (const SseEvent& event : events) progress += event.type == "tlcm.progress";
  EXPECT_EQ(progress, 4);
}

TEST(HttpTest, StreamEndsWithAnErrorEventWhenTheRunFails) {
  TestServer server(HttpConfig());
  ASSERT_TRUE(server.ok());
  server.control().FailNextRun("fake", absl::ResourceExhaustedError("device out of memory"));
  auto client = ClientOf(server);
  auto result = Generate(client, GenerationBody(R"(, "stream": true)"));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  const std::vector<SseEvent> events = ParseSse(result->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "error");
  EXPECT_EQ(events.back().data["error"]["code"], "resource_exhausted");
}

TEST(HttpTest, FailedRunAnswersItsStatus) {
  TestServer server(HttpConfig());
  ASSERT_TRUE(server.ok());
  server.control().FailNextRun("fake", absl::InternalError("unet: boom"));
  auto client = ClientOf(server);
  json error = ErrorOf(Generate(client, GenerationBody()), 500);
  EXPECT_EQ(error["type"], "server_error");
}

TEST(HttpTest, FullQueueAnswers429WithRetryAfter) {
  tlcm::v1::ServerConfig config = HttpConfig();
  config.mutable_models(0)->set_max_queue_size(1);
  config.mutable_models(0)->set_max_batch_size(1);
  config.clear_devices();
  config.add_devices("cpu");
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  server.control().HoldSteps(true);
  RawConnection running(server.server().http_port(), PostRequest(GenerationBody()));
  ASSERT_TRUE(server.control().WaitForParkedBatches(1));
  RawConnection queued(server.server().http_port(), PostRequest(GenerationBody()));
  auto client = ClientOf(server);
  json error;
  std::string retry_after;
  for (int i = 0; i < 100 && error.is_null(); ++i) {  // until the second has taken the place
    auto result = Generate(client, GenerationBody());
    if (result && result->status == 429) {
      error = ErrorOf(result, 429);
      retry_after = result->get_header_value("Retry-After");
    } else {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  EXPECT_EQ(error["code"], "resource_exhausted") << error;
  EXPECT_EQ(retry_after, "1");
  server.control().HoldSteps(false);
  EXPECT_TRUE(absl::StrContains(running.ReadUntil("tlcm_seed"), "200 OK"));
  EXPECT_TRUE(absl::StrContains(queued.ReadUntil("tlcm_seed"), "200 OK"));
}

// A client that hangs up cancels its request: the job leaves the running batch.
TEST(HttpTest, HangingUpCancelsTheRequest) {
  for (const bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "streamed" : "plain");
    TestServer server(HttpConfig());
    ASSERT_TRUE(server.ok());
    server.control().HoldSteps(true);
    {
      RawConnection connection(server.server().http_port(),
                               PostRequest(GenerationBody(stream ? R"(, "stream": true)" : "")));
      ASSERT_TRUE(server.control().WaitForParkedBatches(1));
      if (stream) {
        EXPECT_TRUE(absl::StrContains(connection.ReadUntil("tlcm.progress"), "200 OK"));
      }
    }
    ASSERT_TRUE(server.control().WaitForFinishedRuns(1));
    const auto runs = server.control().request_runs();
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].dropped.size(), 1u) << "the job should have left its batch";
    server.control().HoldSteps(false);
  }
}

TEST(HttpTest, TokensGuardTheApiButNotTheProbes) {
  const std::string tokens =
      (std::filesystem::temp_directory_path() / absl::StrCat("tlcm-http-tokens-", getpid()))
          .string();
  std::ofstream(tokens) << "secret-one\n";
  tlcm::v1::ServerConfig config = HttpConfig();
  config.set_auth_token_file(tokens);
  TestServer server(config);
  std::filesystem::remove(tokens);
  ASSERT_TRUE(server.ok());
  auto client = ClientOf(server);
  json error = ErrorOf(client.Get("/v1/models"), 401);
  EXPECT_EQ(error["type"], "authentication_error");
  error =
      ErrorOf(Generate(client, GenerationBody(), {{"Authorization", "Bearer secret-two"}}), 401);
  EXPECT_FALSE(absl::StrContains(error.dump(), "secret-two"));
  auto result = Generate(client, GenerationBody(), {{"Authorization", "Bearer secret-one"}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  client.set_bearer_token_auth("secret-one");
  result = client.Get("/v1/models");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  auto healthz = ClientOf(server).Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
}

TEST(HttpTest, APortInUseFailsStartNamingIt) {
  TestServer first(HttpConfig());
  ASSERT_TRUE(first.ok());
  tlcm::v1::ServerConfig config = HttpConfig();
  config.set_http_port(first.server().http_port());
  auto resolved = server::ResolveServerConfig(config, {"cpu"});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  auto second = server::Server::Start(*resolved, MakeFakePipelineFactory(NewFakePipelineControl()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(second.status().message(),
                                absl::StrCat("127.0.0.1:", first.server().http_port())))
      << second.status();
}

TEST(HttpTest, ProbesFollowReadinessAndDrain) {
  auto control = NewFakePipelineControl();
  control->HoldLoading(true);
  TestServer server(HttpConfig(), /*wait_ready=*/false, control);
  ASSERT_TRUE(server.ok());
  auto client = ClientOf(server);
  auto readyz = client.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 503);
  json error = ErrorOf(Generate(client, GenerationBody()), 503);
  EXPECT_EQ(error["code"], "unavailable");
  control->HoldLoading(false);
  ASSERT_TRUE(server.server().WaitUntilReady().ok());
  readyz = client.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200);
  auto healthz = client.Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  server.server().Drain(absl::Seconds(1));
  EXPECT_FALSE(client.Get("/readyz")) << "the listener is closed after a drain";
}

// HTTPS with the gRPC port's certificate, and client certificates when mutual TLS is on.
TEST(HttpTest, ServesHttpsWithTheGrpcTlsFiles) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("tlcm-http-tls-", getpid())).string();
  const std::string script = std::string(TLCM_TEST_DATA_DIR) + "/tls/make_test_certs.sh";
  ASSERT_EQ(std::system(absl::StrCat("bash ", script, " ", dir).c_str()), 0) << "openssl failed";
  for (const bool mutual : {false, true}) {
    SCOPED_TRACE(mutual ? "mutual TLS" : "TLS");
    tlcm::v1::ServerConfig config = HttpConfig();
    config.mutable_tls()->set_cert_file(dir + "/server.pem");
    config.mutable_tls()->set_key_file(dir + "/server.key");
    if (mutual) config.mutable_tls()->set_client_ca_file(dir + "/ca.pem");
    TestServer server(config);
    ASSERT_TRUE(server.ok());
    const int port = server.server().http_port();

    httplib::SSLClient with_certificate("localhost", port, dir + "/client.pem",
                                        dir + "/client.key");
    with_certificate.set_ca_cert_path((dir + "/ca.pem").c_str());
    with_certificate.enable_server_certificate_verification(true);
    auto result =
        with_certificate.Post("/v1/images/generations", GenerationBody(), "application/json");
    ASSERT_TRUE(result) << httplib::to_string(result.error());
    EXPECT_EQ(result->status, 200);

    httplib::SSLClient anonymous("localhost", port);
    anonymous.set_ca_cert_path((dir + "/ca.pem").c_str());
    anonymous.enable_server_certificate_verification(true);
    EXPECT_EQ(static_cast<bool>(anonymous.Get("/v1/models")), !mutual)
        << "a client without a certificate is refused exactly when mutual TLS is on";

    httplib::SSLClient wrong_ca("localhost", port);
    wrong_ca.set_ca_cert_path((dir + "/other-ca.pem").c_str());
    wrong_ca.enable_server_certificate_verification(true);
    EXPECT_FALSE(wrong_ca.Get("/healthz")) << "a certificate from an unknown CA is accepted";

    httplib::Client plaintext("127.0.0.1", port);
    auto plain = plaintext.Get("/healthz");
    EXPECT_TRUE(!plain || plain->status >= 400) << "plaintext must not be served";
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tlcm::testing
