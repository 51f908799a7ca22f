// One structured log line per Generate call, on stderr: a JSON object with the request id, model,
// resolved steps / size / images, batch, device, stage timings and the terminal status. Example:
// {"event":"generate","request_id":"a1","model":"sdxl-demo","steps":4,"width":512,"height":512,
//  "num_images":1,"batch_size":2,"num_batches":1,"device":"cpu","queue_ms":3.1,...,
//  "code":"OK","message":""}
#pragma once

#include <string>

#include "absl/status/status.h"
#include "engine/generation_events.h"

namespace tlcm::server {

struct RequestLogEntry {
  std::string request_id;
  std::string peer;   // client address as gRPC reports it, e.g. "ipv4:127.0.0.1:5555"
  std::string model;  // as the client sent it
  int steps = 0;      // resolved (defaults filled in); 0 when the request was rejected
  int width = 0;      // pixels
  int height = 0;
  int num_images = 0;  // requested
  engine::RequestMetrics metrics;
  absl::Status status;
};

// The JSON line (no trailing newline).
std::string FormatRequestLogLine(const RequestLogEntry& entry);

// Writes the line and a newline to stderr in one write, so concurrent lines never interleave.
void LogRequest(const RequestLogEntry& entry);

// Writes `message` (an operational event: start-up, drain, errors) as
// {"event":"<event>","message":"..."} on stderr.
void LogEvent(const std::string& event, const std::string& message);

// Routes the lines that libprotobuf and gRPC's core would print themselves through LogEvent, so
// that stderr stays one JSON object per line: event "protobuf" or "grpc", the message prefixed
// with its level and source location ("ERROR text_format.cc:337: ..."). Call once, early in
// main(), before other threads log (neither library makes the switch thread-safe).
void InstallLibraryLogHandlers();

}  // namespace tlcm::server
