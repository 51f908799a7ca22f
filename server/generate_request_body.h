// Parsing a Generate call's body ourselves (the service takes it raw, grpc::ByteBuffer), so that a
// body libprotobuf would refuse gets a precise INVALID_ARGUMENT that is logged and counted like
// any other rejection, instead of gRPC's bare refusal before our code runs.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/statusor.h"
#include "tlcm/v1/tlcm_service.pb.h"

namespace tlcm::server {

// The GenerateRequest in `body`. Errors (INVALID_ARGUMENT): "<field>: is not valid UTF-8" for a
// string field holding invalid UTF-8 (proto3 strings must be UTF-8), "request: ..." when the
// bytes are not a protobuf message or a field has the wrong wire type.
absl::StatusOr<tlcm::v1::GenerateRequest> ParseGenerateRequest(const grpc::ByteBuffer& body);

// `response` serialized into a ByteBuffer for the raw stream.
grpc::ByteBuffer SerializeGenerateResponse(const tlcm::v1::GenerateResponse& response);

}  // namespace tlcm::server
