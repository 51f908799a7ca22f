// gRPC server credentials from the TLS part of the configuration.
#pragma once

#include <memory>

#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "tlcm/v1/server_config.pb.h"

namespace tlcm::server {

// Plaintext when `tls.cert_file` is empty; TLS with `cert_file` + `key_file`; mutual TLS (client
// certificate required and verified against `client_ca_file`) when that is set too.
// Errors: INVALID_ARGUMENT for an incomplete combination, NOT_FOUND naming a file that cannot be
// read, INVALID_ARGUMENT naming a file that holds no PEM block.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const tlcm::v1::TlsConfig& tls);

}  // namespace tlcm::server
