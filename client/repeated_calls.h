// Many Generate calls over one client (one channel), a few at a time, and a summary of where
// they went and how they ended: what `tlcm-client generate --repeat N --concurrency C` runs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "tlcm/v1/tlcm_service.pb.h"
#include "tlcm_client.h"

namespace tlcm::client {

// How one call ended.
struct CallRecord {
  grpc::Status status;
  std::string peer;        // the server that answered; empty when none did
  absl::Duration latency;  // start to terminal status (all its attempts)
  int images = 0;          // images received
};

struct RepeatedCalls {
  std::vector<CallRecord> calls;  // in call order
  absl::Duration wall;            // first start to last end
};

// Runs `count` Generate calls, call i with `make_request(i)`, at most `concurrency` (>= 1) in
// flight at once, and returns when all have ended. `on_call_done(i, record)`, when set, sees each
// call as it ends, from the thread that ran it (calls may end concurrently). Images are counted,
// not kept.
RepeatedCalls RunRepeatedCalls(
    Client& client, int count, int concurrency,
    const std::function<tlcm::v1::GenerateRequest(int)>& make_request,
    const std::function<void(int, const CallRecord&)>& on_call_done = nullptr);

// A plain-text summary, one fact per line:
//   calls 300 ok 300 failed 0 wall_s 2.41 calls_per_s 124.5
//   status OK 300
//   backend ipv4:127.0.0.1:41001 101
//   latency_ms p50 12.3 p90 20.1 p99 31.0 max 35.2
// statuses by count (then name), backends by address; latencies over every call.
std::string SummarizeRepeatedCalls(const RepeatedCalls& result);

}  // namespace tlcm::client
