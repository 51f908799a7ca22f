// Per-call load reports for balancers: every Generate call ends with an ORCA load report in its
// trailers (key kLoadReportKey, bytes of tlcm.v1.LoadReport, which ORCA readers parse as
// xds.data.orca.v3.OrcaLoadReport) telling how much denoising work the server still has ahead,
// so that a load-aware client or proxy can prefer the emptier replica (docs/server.md).
//
// gRPC 1.51 declares a per-call recorder (grpcpp/ext/call_metric_recorder.h), but Debian's
// libgrpc++ lacks the function that switches it on, so the server writes the same trailer itself.
// gRPC C++ clients never show that trailer to the application (their own balancing policies may
// read it), so the queued work also goes out as plain text under kQueuedWorkKey.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace tlcm::server {

// The trailer key ORCA readers look for.
inline constexpr char kLoadReportKey[] = "endpoint-load-metrics-bin";
// The same queued work as a decimal integer, for clients and proxies that read plain trailers.
inline constexpr char kQueuedWorkKey[] = "tlcm-queued-image-steps";
// LoadReport.named_metrics: the server's queued work in image-steps when the call ended.
inline constexpr char kQueuedImageStepsMetric[] = "queued_image_steps";
// LoadReport.request_cost: this call's denoising work in image-steps.
inline constexpr char kImageStepsCost[] = "image_steps";

// The denoising work a server has admitted and not yet run, in image-steps (one denoising step of
// one image). Thread-safe.
class QueuedWork {
 public:
  // A request was admitted (its images x steps), or `image_steps` of it ran or were dropped
  // (negative).
  void Add(int64_t image_steps) { image_steps_.fetch_add(image_steps); }
  int64_t image_steps() const { return image_steps_.load(); }

 private:
  std::atomic<int64_t> image_steps_{0};
};

// The serialized tlcm.v1.LoadReport of a call that ran `call_image_steps` with
// `queued_image_steps` of work left on the server.
std::string SerializeLoadReport(int64_t queued_image_steps, int64_t call_image_steps);

}  // namespace tlcm::server
