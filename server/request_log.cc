#include "server/request_log.h"

#include <unistd.h>

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "util/client_text.h"

namespace tlcm::server {
namespace {

std::string Timestamp() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
}

void WriteLine(std::string line) {
  line.push_back('\n');
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + written, line.size() - written);
    if (n <= 0) return;
    written += static_cast<size_t>(n);
  }
}

// Rounds milliseconds to 0.1 ms so the line stays short.
double Ms(double ms) { return static_cast<double>(static_cast<int64_t>(ms * 10 + 0.5)) / 10; }

}  // namespace

std::string FormatRequestLogLine(const RequestLogEntry& entry) {
  const auto& m = entry.metrics;
  nlohmann::ordered_json line = {
      {"time", Timestamp()},
      {"event", "generate"},
      {"request_id", entry.request_id},  // a valid client id (at most 128 bytes) or ours
      {"peer", entry.peer},
      {"model", TruncateClientText(entry.model)},
      {"steps", entry.steps},
      {"width", entry.width},
      {"height", entry.height},
      {"num_images", entry.num_images},
      {"images_delivered", m.num_images},
      {"batch_size", m.batch_size},
      {"num_batches", m.num_batches},
      {"device", m.device},
      {"queue_ms", Ms(m.queue_ms)},
      {"text_encode_ms", Ms(m.text_encode_ms)},
      {"denoise_ms", Ms(m.denoise_ms)},
      {"decode_ms", Ms(m.decode_ms)},
      {"image_encode_ms", Ms(m.image_encode_ms)},
      {"total_ms", Ms(m.total_ms)},
      {"code", absl::StatusCodeToString(entry.status.code())},
      {"message", std::string(entry.status.message())},
  };
  // Replace invalid UTF-8 (a prompt never appears, but model names come from clients).
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void LogRequest(const RequestLogEntry& entry) { WriteLine(FormatRequestLogLine(entry)); }

void LogEvent(const std::string& event, const std::string& message) {
  nlohmann::ordered_json line = {{"time", Timestamp()}, {"event", event}, {"message", message}};
  WriteLine(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

namespace {

// "LEVEL file:line: message", with the file's folders dropped.
std::string LibraryLine(absl::string_view level, absl::string_view file, int line,
                        absl::string_view message) {
  const size_t slash = file.rfind('/');
  if (slash != absl::string_view::npos) file.remove_prefix(slash + 1);
  return absl::StrCat(level, " ", file, ":", line, ": ", message);
}

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  static constexpr const char* kLevels[] = {"INFO", "WARNING", "ERROR", "FATAL"};
  const int index = static_cast<int>(level);
  LogEvent("protobuf", LibraryLine(index >= 0 && index < 4 ? kLevels[index] : "LOG",
                                   file == nullptr ? "" : file, line, message));
}

void GrpcLog(gpr_log_func_args* args) {
  LogEvent("grpc", LibraryLine(gpr_log_severity_string(args->severity),
                               args->file == nullptr ? "" : args->file, args->line,
                               args->message == nullptr ? "" : args->message));
}

}  // namespace

void InstallLibraryLogHandlers() {
  google::protobuf::SetLogHandler(&ProtobufLog);
  gpr_set_log_function(&GrpcLog);
}

}  // namespace tlcm::server
