// The gRPC service config of a client channel, built from ClientOptions: the balancing policy,
// client-side health checking and the retry policy of tlcm.v1.TlcmService's methods.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "tlcm_client.h"

namespace tlcm::client {

// The service config JSON for `options` (options.service_config itself when it is set), checked
// by gRPC's own parser. Errors: INVALID_ARGUMENT naming the option out of range (lb_policy not
// round_robin / pick_first, max_attempts outside 1..5, a backoff not positive or a maximum below
// the initial one) or quoting gRPC's complaint about the JSON.
absl::StatusOr<std::string> MakeServiceConfig(const ClientOptions& options);

}  // namespace tlcm::client
