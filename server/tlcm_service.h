// The gRPC adapter of tlcm.v1.TlcmService over the engine (callback API).
//
// Generate: validates what only the wire format can get wrong (enum values, request id), turns
// the proto into an engine::GenerationRequest (deadline from the call) and submits it; the
// engine's events are converted to GenerateResponse messages and written one at a time (one
// write in flight, the rest queued in order), ending with exactly one Finish. No gRPC thread
// ever waits for inference. A client cancel or a broken stream cancels the engine request, which
// frees its queue slot or leaves its batch at the next step boundary. A refusal at admission
// (RESOURCE_EXHAUSTED, UNAVAILABLE, ...) is the status alone, with no message before it, so that
// a client's retry policy may send the call to another replica. Every call's trailers carry a
// load report (load_report.h).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "engine/engine.h"
#include "server/auth.h"
#include "server/load_report.h"
#include "server/metrics.h"
#include "server/request_ids.h"
#include "tlcm/v1/tlcm_service.grpc.pb.h"

namespace tlcm::server {

// Generate takes its body raw (ParseGenerateRequest) so that a body libprotobuf would refuse is
// answered, logged and counted like any other invalid request; its responses are the usual
// GenerateResponse messages on the wire.
class TlcmServiceImpl final : public tlcm::v1::TlcmService::WithRawCallbackMethod_Generate<
                                  tlcm::v1::TlcmService::CallbackService> {
 public:
  // `engine` and `metrics` are not owned and must outlive every call; `auth` (not owned) may be
  // null = no authentication.
  // `request_ids` (not owned, shared with the HTTP front door) must outlive every call.
  TlcmServiceImpl(engine::Engine* engine, ServerMetrics* metrics, const TokenAuthenticator* auth,
                  RequestIdGenerator* request_ids);

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* body) override;

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const tlcm::v1::ListModelsRequest* request,
                                       tlcm::v1::ListModelsResponse* response) override;

 private:
  engine::Engine* engine_;
  ServerMetrics* metrics_;
  const TokenAuthenticator* auth_;
  RequestIdGenerator* request_ids_;
  // Work admitted and not yet run; reported in every Generate call's trailers (load_report.h).
  const std::shared_ptr<QueuedWork> queued_work_;
};

// The wire enum of an image format.
tlcm::v1::ImageFormat ToProtoFormat(ImageFormat format);

// Converts a GenerateRequest into the engine's request (`deadline` absolute on the real clock).
// Errors: INVALID_ARGUMENT for an unknown `format` value or a malformed `request_id`. Everything
// else (prompt, steps, sizes, ...) is validated by the engine against the model.
absl::StatusOr<engine::GenerationRequest> ToEngineRequest(const tlcm::v1::GenerateRequest& request,
                                                          absl::Time deadline);

}  // namespace tlcm::server
