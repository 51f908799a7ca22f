// TokenAuthenticator: the token file format and the metadata check.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "server/auth.h"

namespace tlcm::server {
namespace {

using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

std::string WriteTemp(const std::string& text) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("tlcm-tokens-" + std::to_string(getpid())))
          .string();
  std::ofstream(path) << text;
  return path;
}

TEST(TokenAuthenticatorTest, ChecksBearerTokens) {
  TokenAuthenticator auth({"alpha", "beta"});
  EXPECT_TRUE(auth.Check(Metadata{{"authorization", "Bearer alpha"}}).ok());
  EXPECT_TRUE(auth.Check(Metadata{{"authorization", "bearer beta"}}).ok());
  for (const char* value : {"Bearer alph", "Bearer alphaa", "Basic alpha", "alpha", "Bearer "}) {
    absl::Status status = auth.Check(Metadata{{"authorization", value}});
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << value;
  }
  EXPECT_EQ(auth.Check(Metadata{}).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Check(Metadata{{"x-token", "alpha"}}).code(), absl::StatusCode::kUnauthenticated);
}

TEST(TokenAuthenticatorTest, ReadsOneTokenPerLineSkippingCommentsAndBlanks) {
  const std::string path = WriteTemp("# comment\n\n  first  \nsecond\r\n");
  auto auth = TokenAuthenticator::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->Check(Metadata{{"authorization", "Bearer first"}}).ok());
  EXPECT_TRUE((*auth)->Check(Metadata{{"authorization", "Bearer second"}}).ok());
  EXPECT_FALSE((*auth)->Check(Metadata{{"authorization", "Bearer # comment"}}).ok());
  std::filesystem::remove(path);
}

TEST(TokenAuthenticatorTest, RejectsBadFiles) {
  EXPECT_EQ(TokenAuthenticator::FromFile("/nonexistent/tokens").status().code(),
            absl::StatusCode::kNotFound);
  const std::string empty = WriteTemp("# nothing here\n\n");
  EXPECT_EQ(TokenAuthenticator::FromFile(empty).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string spaced = WriteTemp("two words\n");
  auto status = TokenAuthenticator::FromFile(spaced).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("line 1"), std::string::npos) << status;
  std::filesystem::remove(spaced);
}

}  // namespace
}  // namespace tlcm::server
