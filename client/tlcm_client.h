// A thin C++ client for tlcm.v1.TlcmService and the standard health service.
//
//   tlcm::client::ClientOptions options;
//   options.target = "localhost:50051";
//   auto client = tlcm::client::Client::Create(options).value();
//   tlcm::v1::GenerateRequest request;
//   request.set_model("sdxl-demo");
//   request.set_prompt("a lighthouse at dawn");
//   tlcm::client::GenerateResult result = client->GenerateBlocking(request);
//
// Depends only on gRPC and the generated proto code (no engine, no torch).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tlcm/v1/tlcm_service.grpc.pb.h"

namespace tlcm::client {

struct ClientOptions {
  // gRPC target, e.g. "localhost:50051", "dns:///tlcm-headless.ns.svc:50051" (every address the
  // name resolves to), "ipv4:10.0.0.1:50051,10.0.0.2:50051" (a fixed list).
  std::string target = "localhost:50051";
  // Use TLS. Implied by any of the files below.
  bool tls = false;
  // PEM CA bundle to verify the server with; empty = the system's roots.
  std::string ca_file;
  // PEM client certificate chain and key, for servers that require mutual TLS.
  std::string cert_file;
  std::string key_file;
  // Host name the server certificate must match, when it differs from the target's host
  // (e.g. connecting to 127.0.0.1 with a certificate for "localhost"). Empty = the target's host.
  std::string tls_server_name;
  // Bearer token sent as "authorization: Bearer <token>" on Generate and ListModels (and
  // health checks). Empty = none. Use TLS: over plaintext the token is visible on the network.
  std::string token;
  // Deadline of each call, measured from its start, retries included. InfiniteDuration = none.
  absl::Duration timeout = absl::InfiniteDuration();

  // Balancing over the addresses `target` resolves to (service_config.h builds the gRPC service
  // config from these fields; docs/server.md, "Balancing, health checking and retries").
  // "round_robin": every call picks the next ready address; "pick_first": one address at a time
  // (then the health check below is not used).
  std::string lb_policy = "round_robin";
  // Health service watched on every address (grpc.health.v1 Watch): an address that is not
  // SERVING (loading, draining) gets no calls until it is again. Empty = no health checking.
  std::string health_check_service = "tlcm.v1.TlcmService";
  // Attempts per call, 1..5: a call refused with UNAVAILABLE or RESOURCE_EXHAUSTED before any
  // response arrived is sent again (to the next address) after a randomized exponential backoff,
  // within the call's deadline. A call that has received a response is never sent again.
  // 1 = no retries.
  int max_attempts = 3;
  // Backoff before the second attempt (at most); it grows 2x per attempt up to the maximum.
  absl::Duration retry_initial_backoff = absl::Milliseconds(100);
  absl::Duration retry_max_backoff = absl::Seconds(1);
  // A whole gRPC service config (JSON) used instead of the one built from the fields above.
  // Empty = built from them.
  std::string service_config;
};

// Callbacks of one streaming Generate call. Both run on a gRPC thread: keep them short.
struct GenerateCallbacks {
  // Every response, in stream order. May be empty.
  std::function<void(const tlcm::v1::GenerateResponse&)> on_event;
  // The terminal status, exactly once, after the last on_event. May be empty.
  std::function<void(const grpc::Status&)> on_done;
};

// One streaming Generate call in flight. Destroying it cancels the call if it has not ended and
// waits for its end, so callbacks never outlive it. Thread-safe.
class GenerateCall : public grpc::ClientReadReactor<tlcm::v1::GenerateResponse> {
 public:
  // Asks the server to stop; the call then ends with CANCELLED (unless it already ended).
  void Cancel();
  // Blocks until the call has ended; returns its terminal status.
  grpc::Status Wait();
  // The address of the server that answered (e.g. "ipv4:10.0.0.2:50051"), once the call has
  // ended; empty when no server answered.
  std::string peer();
  ~GenerateCall() override;

 private:
  friend class Client;
  GenerateCall(tlcm::v1::TlcmService::Stub* stub, const tlcm::v1::GenerateRequest& request,
               const ClientOptions& options, GenerateCallbacks callbacks);
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  grpc::ClientContext context_;
  tlcm::v1::GenerateRequest request_;
  tlcm::v1::GenerateResponse response_;
  GenerateCallbacks callbacks_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::string peer_ ABSL_GUARDED_BY(mu_);
};

// Everything a Generate call returned.
struct GenerateResult {
  grpc::Status status;
  std::vector<tlcm::v1::GenerateResponse> events;  // every response, in order
  std::vector<tlcm::v1::Image> images;             // the image events, in arrival order
  tlcm::v1::Metrics metrics;                       // the final metrics (empty unless OK)
  std::string request_id;                          // the id the stream carried
  std::string peer;                                // the server that answered (GenerateCall::peer)
};

// A client of the servers `target` names. Thread-safe; calls may run concurrently.
//
// Generate calls go over a balanced channel (ClientOptions: balancing, health checking,
// retries). ListModels and CheckHealth go over a second channel to the same target that neither
// balances nor watches health (the first address that connects), so that they also reach a
// server that is loading or draining: on the balanced channel a lone server that is NOT_SERVING
// gets no calls at all. Both channels connect on their first call.
class Client {
 public:
  // Builds the channel (it connects lazily). Errors: NOT_FOUND / INVALID_ARGUMENT naming a TLS
  // file that cannot be read or a key without a certificate; INVALID_ARGUMENT for balancing
  // options out of range or a service config gRPC does not accept.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options);

  // Starts a streaming Generate call. The returned call must be kept until it has ended
  // (Wait), or destroyed to cancel it.
  std::unique_ptr<GenerateCall> Generate(const tlcm::v1::GenerateRequest& request,
                                         GenerateCallbacks callbacks);

  // Runs Generate to its end and collects what it returned. `on_event`, when set, also sees
  // every response as it arrives (e.g. for a progress bar).
  GenerateResult GenerateBlocking(
      const tlcm::v1::GenerateRequest& request,
      std::function<void(const tlcm::v1::GenerateResponse&)> on_event = nullptr);

  // The models of the server that answers (over the unbalanced channel).
  grpc::Status ListModels(tlcm::v1::ListModelsResponse* response);

  // Standard health check of `service` ("" = the whole server) of the server that answers (over
  // the unbalanced channel).
  grpc::Status CheckHealth(const std::string& service,
                           grpc::health::v1::HealthCheckResponse::ServingStatus* status);

  // The balanced channel of Generate.
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel,
         std::shared_ptr<grpc::Channel> direct_channel);

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> direct_channel_;
  std::unique_ptr<tlcm::v1::TlcmService::Stub> stub_;            // on channel_
  std::unique_ptr<tlcm::v1::TlcmService::Stub> direct_stub_;     // on direct_channel_
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;  // on direct_channel_
};

// Applies `options`' deadline and token to `context` (shared with GenerateCall).
void ApplyCallOptions(const ClientOptions& options, grpc::ClientContext* context);

}  // namespace tlcm::client
