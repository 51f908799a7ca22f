// The per-request log line is one JSON object with every field; so are the lines libprotobuf and
// gRPC would print themselves.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/request_log.h"

#include <regex>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>
#include <grpc/grpc.h>
#include <grpc/support/log.h>

#include "absl/strings/str_split.h"
#include "tlcm/v1/server_config.pb.h"

namespace tlcm::server {
namespace {

TEST(RequestLogTest, OneJsonObjectWithEveryField) {
  RequestLogEntry entry;
  entry.request_id = "r-1";
  entry.peer = "ipv4:127.0.0.1:4000";
  entry.model = "sdxl\xff";  // invalid UTF-8 from a client must not break the line
  entry.steps = 4;
  entry.width = 512;
  entry.height = 768;
  entry.num_images = 2;
  entry.metrics.queue_ms = 1.26;
  entry.metrics.total_ms = 100.04;
  entry.metrics.batch_size = 3;
  entry.metrics.num_batches = 1;
  entry.metrics.num_images = 2;
  entry.metrics.device = "cuda:1";
  entry.status = absl::InvalidArgumentError("steps: \"quoted\"\nnewline");
  const std::string line = FormatRequestLogLine(entry);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto json = nlohmann::json::parse(line);
  EXPECT_EQ(json["event"], "generate");
  EXPECT_EQ(json["request_id"], "r-1");
  EXPECT_EQ(json["steps"], 4);
  EXPECT_EQ(json["width"], 512);
  EXPECT_EQ(json["height"], 768);
  EXPECT_EQ(json["num_images"], 2);
  EXPECT_EQ(json["batch_size"], 3);
  EXPECT_EQ(json["device"], "cuda:1");
  EXPECT_DOUBLE_EQ(json["queue_ms"].get<double>(), 1.3);
  EXPECT_DOUBLE_EQ(json["total_ms"].get<double>(), 100.0);
  EXPECT_EQ(json["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(json["message"], "steps: \"quoted\"\nnewline");
  for (const char* key : {"time", "peer", "model", "text_encode_ms", "denoise_ms", "decode_ms",
                          "image_encode_ms", "images_delivered", "num_batches"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
}

TEST(RequestLogTest, AHugeModelNameIsCutNotCopied) {
  RequestLogEntry entry;
  entry.request_id = "r-2";
  entry.model = std::string(2 << 20, 'm');  // 2 MB from a client that is not even authorised
  entry.status = absl::NotFoundError("model: \"mmm\"...(2097152 bytes) is not served here");
  const std::string line = FormatRequestLogLine(entry);
  EXPECT_LT(line.size(), 1000u);
  auto json = nlohmann::json::parse(line);
  EXPECT_EQ(json["model"], std::string(64, 'm') + "...(2097152 bytes)");
}

// Every non-empty stderr line of `output` as parsed JSON (a line that does not parse fails).
std::vector<nlohmann::json> JsonLines(const std::string& output) {
  std::vector<nlohmann::json> lines;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

TEST(RequestLogTest, LibraryLogLinesBecomeJsonEvents) {
  InstallLibraryLogHandlers();
  grpc_init();  // gRPC's core reads its log verbosity there; before it, gpr_log prints nothing
  ::testing::internal::CaptureStderr();
  tlcm::v1::ServerConfig config;
  // libprotobuf reports a parse error of its own...
  EXPECT_FALSE(google::protobuf::TextFormat::ParseFromString("port: \"not a number\"", &config));
  // ...and so does gRPC's core.
  gpr_log(GPR_ERROR, "%s", "a core error");
  const std::vector<nlohmann::json> lines = JsonLines(::testing::internal::GetCapturedStderr());
  grpc_shutdown();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["event"], "protobuf");
  EXPECT_EQ(lines[0]["message"].get<std::string>().rfind("ERROR text_format.cc:", 0), 0u)
      << lines[0];
  EXPECT_EQ(lines[1]["event"], "grpc");
  EXPECT_TRUE(std::regex_match(lines[1]["message"].get<std::string>(),
                               std::regex("E request_log_test\\.cc:[0-9]+: a core error")))
      << lines[1];
}

}  // namespace
}  // namespace tlcm::server
