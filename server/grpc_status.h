// The one mapping from absl::Status (engine, config, pipelines) to grpc::Status (the wire).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace tlcm::server {

// Same code (the two enums share their numbering and meaning) and message. A message that is
// not valid in an HTTP/2 trailer is still sent; gRPC percent-encodes it.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace tlcm::server
