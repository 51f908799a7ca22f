#include "service_config.h"

#include <grpcpp/support/validate_service_config.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tlcm::client {
namespace {

// gRPC's limit: larger values are silently lowered to it.
constexpr int kMaxAttemptsLimit = 5;

// A protobuf JSON duration, e.g. "0.100000000s".
std::string JsonDuration(absl::Duration duration) {
  return absl::StrFormat("\"%.9fs\"", absl::ToDoubleSeconds(duration));
}

}  // namespace

absl::StatusOr<std::string> MakeServiceConfig(const ClientOptions& options) {
  std::string config = options.service_config;
  if (config.empty()) {
    if (options.lb_policy != "round_robin" && options.lb_policy != "pick_first") {
      return absl::InvalidArgumentError(
          absl::StrCat("lb_policy: \"", options.lb_policy, "\" is not round_robin or pick_first"));
    }
    if (options.max_attempts < 1 || options.max_attempts > kMaxAttemptsLimit) {
      return absl::InvalidArgumentError(absl::StrCat("max_attempts: ", options.max_attempts,
                                                     " is outside 1..", kMaxAttemptsLimit));
    }
    if (options.retry_initial_backoff <= absl::ZeroDuration() ||
        options.retry_max_backoff < options.retry_initial_backoff) {
      return absl::InvalidArgumentError(absl::StrCat(
          "retry backoff: the initial one (", absl::FormatDuration(options.retry_initial_backoff),
          ") must be positive and at most the maximum (",
          absl::FormatDuration(options.retry_max_backoff), ")"));
    }
    config = absl::StrCat("{\"loadBalancingConfig\": [{\"", options.lb_policy, "\": {}}]");
    if (!options.health_check_service.empty()) {
      absl::StrAppend(&config, ", \"healthCheckConfig\": {\"serviceName\": \"",
                      options.health_check_service, "\"}");
    }
    // gRPC sends a call again only while no response has arrived (the server answers a refusal
    // at admission with the status alone), and never past the call's deadline.
    if (options.max_attempts > 1) {
      absl::StrAppend(&config,
                      ", \"methodConfig\": [{\"name\": [{\"service\": \"tlcm.v1.TlcmService\"}], ",
                      "\"retryPolicy\": {\"maxAttempts\": ", options.max_attempts,
                      ", \"initialBackoff\": ", JsonDuration(options.retry_initial_backoff),
                      ", \"maxBackoff\": ", JsonDuration(options.retry_max_backoff),
                      ", \"backoffMultiplier\": 2",
                      ", \"retryableStatusCodes\": [\"UNAVAILABLE\", \"RESOURCE_EXHAUSTED\"]}}]");
    }
    absl::StrAppend(&config, "}");
  }
  const std::string error = grpc::experimental::ValidateServiceConfigJSON(config);
  if (!error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("service config: ", error));
  }
  return config;
}

}  // namespace tlcm::client
