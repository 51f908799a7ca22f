#include "server/credentials.h"

#include <fstream>
#include <sstream>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace tlcm::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("tls.", field, ": cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string pem = buffer.str();
  if (!absl::StrContains(pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.", field, ": ", path, " holds no PEM block (-----BEGIN ...)"));
  }
  return pem;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const tlcm::v1::TlsConfig& tls) {
  if (tls.cert_file().empty()) {
    if (!tls.key_file().empty() || !tls.client_ca_file().empty()) {
      return absl::InvalidArgumentError(
          "tls.key_file / tls.client_ca_file are set but tls.cert_file is empty");
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.key_file().empty()) {
    return absl::InvalidArgumentError("tls.cert_file is set but tls.key_file is empty");
  }
  grpc::SslServerCredentialsOptions options;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  TLCM_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(tls.cert_file(), "cert_file"));
  TLCM_ASSIGN_OR_RETURN(pair.private_key, ReadPem(tls.key_file(), "key_file"));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (tls.client_ca_file().empty()) {
    options.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  } else {
    TLCM_ASSIGN_OR_RETURN(options.pem_root_certs, ReadPem(tls.client_ca_file(), "client_ca_file"));
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace tlcm::server
