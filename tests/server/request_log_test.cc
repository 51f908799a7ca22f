// The per-request log line is one JSON object with every field.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/request_log.h"

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

}  // namespace
}  // namespace tlcm::server
