// Bearer-token authentication, TLS and mutual TLS, end to end. Certificates are made at test
// time by tests/data/tls/make_test_certs.sh (openssl CLI).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

namespace fs = std::filesystem;
using grpc::health::v1::HealthCheckResponse;

// A fresh temporary folder, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tlcm-server-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(AuthTest, TokenRequiredForGenerateAndListModelsButNotHealth) {
  TempDir dir;
  WriteFile(dir.File("tokens"), "# operators\nsecret-one\n\n  secret-two  \n");
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_auth_token_file(dir.File("tokens"));
  TestServer server(config);
  ASSERT_TRUE(server.ok());

  auto anonymous = server.NewClient();
  auto missing = anonymous->GenerateBlocking(SimpleRequest());
  EXPECT_EQ(missing.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  tlcm::v1::ListModelsResponse models;
  EXPECT_EQ(anonymous->ListModels(&models).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Health(*anonymous), HealthCheckResponse::SERVING);

  client::ClientOptions wrong_options;
  wrong_options.token = "secret-three";
  auto wrong = server.NewClient(wrong_options)->GenerateBlocking(SimpleRequest());
  EXPECT_EQ(wrong.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.status.error_message().find("secret-three"), std::string::npos)
      << "the presented token must not be echoed";

  for (const char* token : {"secret-one", "secret-two"}) {
    client::ClientOptions options;
    options.token = token;
    auto client = server.NewClient(options);
    auto result = client->GenerateBlocking(SimpleRequest());
    EXPECT_TRUE(result.status.ok()) << token << ": " << result.status.error_message();
    EXPECT_TRUE(client->ListModels(&models).ok());
  }
}

TEST(AuthTest, MissingTokenFileFailsStart) {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_auth_token_file("/nonexistent/tokens");
  auto resolved = server::ResolveServerConfig(config, {"cpu"});
  ASSERT_TRUE(resolved.ok());
  auto started =
      server::Server::Start(*resolved, MakeFakePipelineFactory(NewFakePipelineControl()));
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("/nonexistent/tokens"), std::string::npos);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string script = std::string(TLCM_TEST_DATA_DIR) + "/tls/make_test_certs.sh";
    ASSERT_EQ(std::system(absl::StrCat("bash ", script, " ", dir_.File("")).c_str()), 0)
        << "openssl failed";
  }

  tlcm::v1::ServerConfig TlsConfig(bool mutual) {
    tlcm::v1::ServerConfig config = BaseConfig();
    config.mutable_tls()->set_cert_file(dir_.File("server.pem"));
    config.mutable_tls()->set_key_file(dir_.File("server.key"));
    if (mutual) config.mutable_tls()->set_client_ca_file(dir_.File("ca.pem"));
    return config;
  }

  client::ClientOptions TlsClient(const std::string& ca = "ca.pem") {
    client::ClientOptions options;
    options.tls = true;
    options.ca_file = dir_.File(ca);
    options.tls_server_name = "localhost";
    options.timeout = absl::Seconds(10);
    return options;
  }

  TempDir dir_;
};

TEST_F(TlsTest, ServesOverTlsAndRefusesPlaintext) {
  TestServer server(TlsConfig(/*mutual=*/false));
  ASSERT_TRUE(server.ok());
  auto result = server.NewClient(TlsClient())->GenerateBlocking(SimpleRequest());
  EXPECT_TRUE(result.status.ok()) << result.status.error_message();

  client::ClientOptions plaintext;
  plaintext.timeout = absl::Seconds(2);
  auto refused = server.NewClient(plaintext)->GenerateBlocking(SimpleRequest());
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);

  auto untrusted = server.NewClient(TlsClient("other-ca.pem"))->GenerateBlocking(SimpleRequest());
  EXPECT_EQ(untrusted.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << "a server certificate from an unknown CA must not be accepted";
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificate) {
  TestServer server(TlsConfig(/*mutual=*/true));
  ASSERT_TRUE(server.ok());
  auto without = server.NewClient(TlsClient())->GenerateBlocking(SimpleRequest());
  EXPECT_EQ(without.status.error_code(), grpc::StatusCode::UNAVAILABLE);

  client::ClientOptions with = TlsClient();
  with.cert_file = dir_.File("client.pem");
  with.key_file = dir_.File("client.key");
  auto result = server.NewClient(with)->GenerateBlocking(SimpleRequest());
  EXPECT_TRUE(result.status.ok()) << result.status.error_message();
}

TEST_F(TlsTest, BadCertificateFilesFailStartNamingTheField) {
  tlcm::v1::ServerConfig config = TlsConfig(false);
  config.mutable_tls()->set_key_file(dir_.File("missing.key"));
  auto resolved = server::ResolveServerConfig(config, {"cpu"});
  ASSERT_TRUE(resolved.ok());
  auto started =
      server::Server::Start(*resolved, MakeFakePipelineFactory(NewFakePipelineControl()));
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("tls.key_file"), std::string::npos) << started.status();
}

}  // namespace
}  // namespace tlcm::testing
