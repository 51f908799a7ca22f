// Generate bodies that libprotobuf itself would refuse (a string that is not UTF-8, bytes that
// are no protobuf at all), sent raw: a precise INVALID_ARGUMENT naming the field, counted and
// logged like any other rejection.
#include <grpcpp/generic/generic_stub.h>

#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/server/exposition.h"
#include "tests/server/http_exchange.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

// Sends `body` as the request of TlcmService/Generate and returns the call's final status.
grpc::Status GenerateRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& body) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&context, "/tlcm.v1.TlcmService/Generate", &cq);
  void* tag;
  bool ok;
  const auto next = [&] { return cq.Next(&tag, &ok) && ok; };
  call->StartCall(reinterpret_cast<void*>(1));
  next();
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  call->WriteLast(request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
  next();
  grpc::ByteBuffer response;
  do {
    call->Read(&response, reinterpret_cast<void*>(3));
  } while (next());
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  next();
  return status;
}

// A GenerateRequest on the wire: model (field 1) and prompt (field 2), both length-delimited.
std::string Body(const std::string& model, const std::string& prompt) {
  const auto field = [](char tag, const std::string& value) {
    return std::string(1, tag) + static_cast<char>(value.size()) + value;  // values < 128 bytes
  };
  return field('\x0a', model) + field('\x12', prompt);
}

TEST(HostileInputTest, AStringThatIsNotUtf8IsInvalidArgumentNamingTheField) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto channel = server.NewClient()->channel();
  grpc::Status status = GenerateRaw(channel, Body("fake", "a \xff\xfe cat"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "prompt: is not valid UTF-8");
  status = GenerateRaw(channel, Body("fa\xc3ke", "a cat"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "model: is not valid UTF-8");
  // The same body with valid text works: nothing else differs.
  EXPECT_TRUE(GenerateRaw(channel, Body("fake", "a cat")).ok());
}

TEST(HostileInputTest, BytesThatAreNoProtobufAreInvalidArgumentAndCounted) {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_metrics_port(0);
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  const grpc::Status status =
      GenerateRaw(server.NewClient()->channel(), std::string("\xff\xff\xff\xff\x0f", 5));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "request: the body is not a protobuf"))
      << status.error_message();
  const Exposition metrics = ParseExposition(HttpGet(server.server().metrics_port(), "/metrics"));
  EXPECT_EQ(metrics.Value("tlcm_requests_total", {{"model", ""}, {"code", "INVALID_ARGUMENT"}}), 1);
}

}  // namespace
}  // namespace tlcm::testing
