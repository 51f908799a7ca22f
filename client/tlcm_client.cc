#include "tlcm_client.h"

#include <fstream>
#include <sstream>
#include <utility>

#include <grpc/grpc.h>

#include "absl/strings/str_cat.h"
#include "service_config.h"

namespace tlcm::client {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, ": cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const ClientOptions& options) {
  const bool tls = options.tls || !options.ca_file.empty() || !options.cert_file.empty() ||
                   !options.key_file.empty();
  if (!tls) return grpc::InsecureChannelCredentials();
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("a client certificate needs both cert_file and key_file");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    auto roots = ReadFile(options.ca_file, "ca_file");
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
  }
  if (!options.cert_file.empty()) {
    auto cert = ReadFile(options.cert_file, "cert_file");
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(options.key_file, "key_file");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

void ApplyCallOptions(const ClientOptions& options, grpc::ClientContext* context) {
  if (options.timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  }
  if (!options.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
  }
}

GenerateCall::GenerateCall(tlcm::v1::TlcmService::Stub* stub,
                           const tlcm::v1::GenerateRequest& request, const ClientOptions& options,
                           GenerateCallbacks callbacks)
    : request_(request), callbacks_(std::move(callbacks)) {
  ApplyCallOptions(options, &context_);
  stub->async()->Generate(&context_, &request_, this);
  StartRead(&response_);
  StartCall();
}

GenerateCall::~GenerateCall() {
  bool done;
  {
    absl::MutexLock lock(&mu_);
    done = done_;
  }
  if (!done) context_.TryCancel();
  Wait();
}

void GenerateCall::Cancel() { context_.TryCancel(); }

grpc::Status GenerateCall::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&done_));
  return status_;
}

std::string GenerateCall::peer() {
  absl::MutexLock lock(&mu_);
  return peer_;
}

void GenerateCall::OnReadDone(bool ok) {
  if (!ok) return;  // the stream ended; OnDone follows
  if (callbacks_.on_event) callbacks_.on_event(response_);
  StartRead(&response_);
}

void GenerateCall::OnDone(const grpc::Status& status) {
  if (callbacks_.on_done) callbacks_.on_done(status);
  std::string peer = context_.peer();
  absl::MutexLock lock(&mu_);
  status_ = status;
  peer_ = std::move(peer);
  done_ = true;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  auto credentials = MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();
  auto service_config = MakeServiceConfig(options);
  if (!service_config.ok()) return service_config.status();
  grpc::ChannelArguments args;
  // Images can be several MiB; the server bounds what it sends.
  args.SetMaxReceiveMessageSize(-1);
  // Ours is the only service config: no DNS TXT lookups, nothing from the resolver overrides it.
  args.SetInt(GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION, 1);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  grpc::ChannelArguments balanced_args = args;
  balanced_args.SetServiceConfigJSON(*service_config);
  auto channel = grpc::CreateCustomChannel(options.target, *credentials, balanced_args);
  // gRPC's default service config: pick_first, no health checking, no retries.
  auto direct_channel = grpc::CreateCustomChannel(options.target, *credentials, args);
  return std::unique_ptr<Client>(
      new Client(options, std::move(channel), std::move(direct_channel)));
}

Client::Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel,
               std::shared_ptr<grpc::Channel> direct_channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      direct_channel_(std::move(direct_channel)),
      stub_(tlcm::v1::TlcmService::NewStub(channel_)),
      direct_stub_(tlcm::v1::TlcmService::NewStub(direct_channel_)),
      health_stub_(grpc::health::v1::Health::NewStub(direct_channel_)) {}

std::unique_ptr<GenerateCall> Client::Generate(const tlcm::v1::GenerateRequest& request,
                                               GenerateCallbacks callbacks) {
  return std::unique_ptr<GenerateCall>(
      new GenerateCall(stub_.get(), request, options_, std::move(callbacks)));
}

GenerateResult Client::GenerateBlocking(
    const tlcm::v1::GenerateRequest& request,
    std::function<void(const tlcm::v1::GenerateResponse&)> on_event) {
  GenerateResult result;
  GenerateCallbacks callbacks;
  // Events arrive one at a time (the next read starts after the callback), so no lock is needed
  // until Wait() hands `result` back to this thread.
  callbacks.on_event = [&result, &on_event](const tlcm::v1::GenerateResponse& response) {
    if (on_event) on_event(response);
    result.events.push_back(response);
    if (result.request_id.empty()) result.request_id = response.request_id();
    if (response.has_image()) result.images.push_back(response.image());
    if (response.has_metrics()) result.metrics = response.metrics();
  };
  auto call = Generate(request, std::move(callbacks));
  result.status = call->Wait();
  result.peer = call->peer();
  return result;
}

grpc::Status Client::ListModels(tlcm::v1::ListModelsResponse* response) {
  grpc::ClientContext context;
  ApplyCallOptions(options_, &context);
  return direct_stub_->ListModels(&context, tlcm::v1::ListModelsRequest(), response);
}

grpc::Status Client::CheckHealth(const std::string& service,
                                 grpc::health::v1::HealthCheckResponse::ServingStatus* status) {
  grpc::ClientContext context;
  ApplyCallOptions(options_, &context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status result = health_stub_->Check(&context, request, &response);
  *status = response.status();
  return result;
}

}  // namespace tlcm::client
