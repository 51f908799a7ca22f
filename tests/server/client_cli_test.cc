// tlcm-client, the program: its commands against a running server and its documented exit codes.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "image/png_codec.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout
};

CliRun RunClient(const std::string& args) {
  CliRun run;
  const std::string command = absl::StrCat(TLCM_CLIENT_BINARY, " ", args, " 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.out.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(ClientCliTest, CommandsAndExitCodes) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  const std::string target = absl::StrCat("--target ", server.target());
  const std::string out_dir = (fs::temp_directory_path() / "tlcm-client-cli-test").string();
  fs::remove_all(out_dir);
  fs::create_directories(out_dir);

  CliRun health = RunClient(absl::StrCat("health ", target));
  EXPECT_EQ(health.exit_code, 0);
  EXPECT_EQ(health.out, "SERVING\n");

  CliRun models = RunClient(absl::StrCat("models ", target));
  EXPECT_EQ(models.exit_code, 0);
  EXPECT_NE(models.out.find("fake  family=sdxl ready=yes"), std::string::npos) << models.out;
  EXPECT_NE(models.out.find(" batching=request "), std::string::npos) << models.out;

  CliRun generate = RunClient(absl::StrCat("generate ", target,
                                           " --model fake --prompt 'a blue cone' --count 2"
                                           " --seed 9 --width 32 --height 48 --request_id cli-1"
                                           " --out_dir ",
                                           out_dir));
  EXPECT_EQ(generate.exit_code, 0) << generate.out;
  EXPECT_NE(generate.out.find("total_ms="), std::string::npos) << generate.out;
  for (int i = 0; i < 2; ++i) {
    const std::string path = absl::StrCat(out_dir, "/cli-1-", i, ".png");
    ASSERT_TRUE(fs::exists(path)) << generate.out;
    std::string bytes(fs::file_size(path), '\0');
    FILE* file = fopen(path.c_str(), "rb");
    ASSERT_EQ(fread(bytes.data(), 1, bytes.size(), file), bytes.size());
    fclose(file);
    auto image = DecodePng(bytes);
    ASSERT_TRUE(image.ok());
    EXPECT_EQ(image->pixels, FakeImage(9 + i, "a blue cone", 32, 48).pixels);
  }

  EXPECT_EQ(RunClient(absl::StrCat("generate ", target, " --model nope --prompt x")).exit_code,
            10 + static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(
      RunClient(absl::StrCat("generate ", target, " --model fake --prompt x --steps 99")).exit_code,
      10 + static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(RunClient(absl::StrCat("generate ", target, " --model fake")).exit_code, 2);
  EXPECT_EQ(RunClient(absl::StrCat("frobnicate ", target)).exit_code, 2);
  EXPECT_EQ(RunClient(absl::StrCat("health ", target, " --service no.such.Service")).exit_code,
            10 + static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(RunClient("health --target 127.0.0.1:1 --timeout_seconds 2").exit_code,
            10 + static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  fs::remove_all(out_dir);
}

// --repeat N --concurrency C over a target naming two servers: one summary, calls on both.
TEST(ClientCliTest, RepeatSummarizesCallsPerBackend) {
  TestServer a;
  TestServer b;
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string target =
      absl::StrCat("--target ipv4:", a.target(), ",", b.target(), " --model fake --prompt x");

  CliRun run = RunClient(absl::StrCat("generate ", target, " --repeat 12 --concurrency 3"));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out.rfind("calls 12 ok 12 failed 0 ", 0), 0u) << run.out;
  EXPECT_NE(run.out.find("\nstatus OK 12\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(absl::StrCat("\nbackend ipv4:", a.target(), " ")), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find(absl::StrCat("\nbackend ipv4:", b.target(), " ")), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("\nlatency_ms p50 "), std::string::npos) << run.out;

  CliRun failing = RunClient(absl::StrCat("generate ", target, " --steps 99 --repeat 3"));
  EXPECT_EQ(failing.exit_code, 10 + static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(failing.out.find("\nstatus INVALID_ARGUMENT 3\n"), std::string::npos) << failing.out;

  EXPECT_EQ(RunClient(absl::StrCat("generate ", target, " --repeat 0")).exit_code, 2);
  EXPECT_EQ(RunClient(absl::StrCat("generate ", target, " --lb_policy random")).exit_code, 2);
  EXPECT_EQ(RunClient(absl::StrCat("generate ", target, " --max_attempts 9")).exit_code, 2);
}

}  // namespace
}  // namespace tlcm::testing
