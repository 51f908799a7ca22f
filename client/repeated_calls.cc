#include "repeated_calls.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tlcm::client {
namespace {

// The name of a gRPC status code, e.g. "RESOURCE_EXHAUSTED" (gRPC's codes are Abseil's).
std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// The latency at quantile `q` of ascending `sorted` (nearest rank), in milliseconds.
double QuantileMs(const std::vector<absl::Duration>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return absl::ToDoubleMilliseconds(sorted[rank - 1]);
}

}  // namespace

RepeatedCalls RunRepeatedCalls(Client& client, int count, int concurrency,
                               const std::function<tlcm::v1::GenerateRequest(int)>& make_request,
                               const std::function<void(int, const CallRecord&)>& on_call_done) {
  RepeatedCalls result;
  result.calls.resize(std::max(count, 0));
  std::atomic<int> next{0};
  auto run = [&] {
    for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      CallRecord record;
      int images = 0;
      const absl::Time start = absl::Now();
      auto call =
          client.Generate(make_request(i), {[&images](const tlcm::v1::GenerateResponse& event) {
                                              if (event.has_image()) ++images;
                                            },
                                            nullptr});
      record.status = call->Wait();
      record.latency = absl::Now() - start;
      record.peer = call->peer();
      record.images = images;
      if (on_call_done) on_call_done(i, record);
      result.calls[i] = std::move(record);
    }
  };
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min(std::max(concurrency, 1), count); ++t) threads.emplace_back(run);
  for (auto& thread : threads) thread.join();
  result.wall = absl::Now() - start;
  return result;
}

std::string SummarizeRepeatedCalls(const RepeatedCalls& result) {
  std::map<std::string, int> statuses;
  std::map<std::string, int> backends;
  std::vector<absl::Duration> latencies;
  int ok = 0;
  for (const CallRecord& call : result.calls) {
    ++statuses[CodeName(call.status.error_code())];
    ++backends[call.peer.empty() ? "(none)" : call.peer];
    latencies.push_back(call.latency);
    if (call.status.ok()) ++ok;
  }
  std::sort(latencies.begin(), latencies.end());
  const int total = static_cast<int>(result.calls.size());
  const double wall_s = absl::ToDoubleSeconds(result.wall);
  std::string out =
      absl::StrFormat("calls %d ok %d failed %d wall_s %.2f calls_per_s %.1f\n", total, ok,
                      total - ok, wall_s, wall_s > 0 ? total / wall_s : 0.0);
  std::vector<std::pair<std::string, int>> by_count(statuses.begin(), statuses.end());
  std::stable_sort(by_count.begin(), by_count.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [name, n] : by_count) absl::StrAppend(&out, "status ", name, " ", n, "\n");
  for (const auto& [peer, n] : backends) absl::StrAppend(&out, "backend ", peer, " ", n, "\n");
  absl::StrAppend(&out, absl::StrFormat("latency_ms p50 %.1f p90 %.1f p99 %.1f max %.1f\n",
                                        QuantileMs(latencies, 0.5), QuantileMs(latencies, 0.9),
                                        QuantileMs(latencies, 0.99), QuantileMs(latencies, 1.0)));
  return out;
}

}  // namespace tlcm::client
