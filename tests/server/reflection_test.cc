// Server reflection lists the service (what grpcurl and ghz rely on). The reflection protocol
// is spoken with hand-encoded bytes: its generated C++ code lives inside libgrpc++_reflection
// without installed headers.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// Sends one ServerReflectionRequest (`request`, encoded) and returns the response, encoded.
std::string AskReflection(const std::shared_ptr<grpc::Channel>& channel,
                          const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  auto step = [&](intptr_t expected) {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), expected);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(step(1));
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  EXPECT_TRUE(step(2));
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(3));
  EXPECT_TRUE(step(3));
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  EXPECT_TRUE(status.ok()) << status.error_message();

  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(in.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

// Sends ServerReflectionRequest{list_services: ""} and returns the service names listed.
std::set<std::string> ListServices(const std::shared_ptr<grpc::Channel>& channel) {
  // Field 7 (list_services), wire type 2 (length-delimited), empty string.
  UnknownFieldSet response;
  EXPECT_TRUE(response.ParseFromString(AskReflection(channel, std::string("\x3a\x00", 2))));
  // ServerReflectionResponse.list_services_response = 6 { repeated ServiceResponse service = 1
  // { string name = 1 } }.
  std::set<std::string> names;
  for (int i = 0; i < response.field_count(); ++i) {
    const UnknownField& field = response.field(i);
    if (field.number() != 6 || field.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    UnknownFieldSet list;
    EXPECT_TRUE(list.ParseFromString(field.length_delimited()));
    for (int j = 0; j < list.field_count(); ++j) {
      if (list.field(j).number() != 1) continue;
      UnknownFieldSet service;
      EXPECT_TRUE(service.ParseFromString(list.field(j).length_delimited()));
      for (int k = 0; k < service.field_count(); ++k) {
        if (service.field(k).number() == 1) names.insert(service.field(k).length_delimited());
      }
    }
  }
  return names;
}

// Whether reflection can describe `symbol`: ServerReflectionRequest{file_containing_symbol = 4}
// answers file_descriptor_response (4) when it can, error_response (7) when it cannot.
bool DescribesSymbol(const std::shared_ptr<grpc::Channel>& channel, const std::string& symbol) {
  const std::string request = std::string("\x22") + static_cast<char>(symbol.size()) + symbol;
  UnknownFieldSet response;
  EXPECT_TRUE(response.ParseFromString(AskReflection(channel, request)));
  for (int i = 0; i < response.field_count(); ++i) {
    if (response.field(i).number() == 4) return true;
  }
  return false;
}

TEST(ReflectionTest, ListsTheServiceAndHealth) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  const auto names = ListServices(server.NewClient()->channel());
  EXPECT_EQ(names.count("tlcm.v1.TlcmService"), 1u);
  EXPECT_EQ(names.count("grpc.health.v1.Health"), 1u);
  EXPECT_EQ(names.count("grpc.reflection.v1alpha.ServerReflection"), 1u);
}

// tlcm-fake-server as a child process: unlike this test binary, it links no client code, so it
// holds exactly the descriptors the server registers itself (as tlcm-server does).
TEST(ReflectionTest, TheServerItselfCanDescribeTheHealthService) {
  const int port = FreeLoopbackPort();
  const std::string port_flag = absl::StrCat("--port=", port);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl(TLCM_FAKE_SERVER_BINARY, TLCM_FAKE_SERVER_BINARY, port_flag.c_str(), "--metrics_port=-1",
          "--devices=cpu", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  EXPECT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)));
  EXPECT_TRUE(DescribesSymbol(channel, "tlcm.v1.TlcmService"));
  EXPECT_TRUE(DescribesSymbol(channel, "grpc.health.v1.Health"));
  EXPECT_FALSE(DescribesSymbol(channel, "no.such.Service"));
  kill(child, SIGTERM);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace tlcm::testing
