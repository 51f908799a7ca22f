// Configuration: parsing, defaults, validation messages, engine options, the demo config file.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "server/demo_config.h"
#include "server/server_config.h"

namespace tlcm::server {
namespace {

tlcm::v1::ServerConfig Parse(const std::string& text) {
  auto config = ParseServerConfig(text, "/etc/tlcm", "test.textproto");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : tlcm::v1::ServerConfig();
}

constexpr char kMinimal[] = R"pb(
  models { name: "sdxl" base_model_path: "models/sdxl" lora_path: "/abs/lora" }
)pb";

TEST(ConfigTest, ResolvesRelativePathsAgainstTheFileFolder) {
  auto config = Parse(R"pb(
    auth_token_file: "tokens"
    tls { cert_file: "tls/server.pem" key_file: "/keys/server.key" }
    models { name: "m" base_model_path: "../models/sdxl" lora_path: "lora" vae_path: "" }
  )pb");
  EXPECT_EQ(config.auth_token_file(), "/etc/tlcm/tokens");
  EXPECT_EQ(config.tls().cert_file(), "/etc/tlcm/tls/server.pem");
  EXPECT_EQ(config.tls().key_file(), "/keys/server.key");
  EXPECT_EQ(config.models(0).base_model_path(), "/etc/models/sdxl");
  EXPECT_EQ(config.models(0).lora_path(), "/etc/tlcm/lora");
  EXPECT_EQ(config.models(0).vae_path(), "");
}

TEST(ConfigTest, SyntaxErrorsNameFileLineAndColumn) {
  auto config = ParseServerConfig("port: 1\nmodels { nme: \"x\" }\n", "", "bad.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("bad.textproto:2:"), std::string::npos)
      << config.status();
  EXPECT_NE(config.status().message().find("nme"), std::string::npos) << config.status();
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadServerConfig("/nonexistent/server.textproto").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ConfigTest, FillsDefaults) {
  auto resolved = ResolveServerConfig(Parse(kMinimal), {"cpu"});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->listen_address(), "0.0.0.0");
  EXPECT_EQ(resolved->port(), 50051);
  EXPECT_EQ(resolved->metrics_port(), 9464);
  ASSERT_EQ(resolved->devices_size(), 1);
  EXPECT_EQ(resolved->devices(0), "cpu");
  EXPECT_EQ(resolved->drain_grace_seconds(), 30);
  EXPECT_EQ(resolved->worker_stall_seconds(), 300);
  EXPECT_EQ(resolved->metrics_listen_address(), "0.0.0.0");  // the gRPC address
  EXPECT_EQ(resolved->encoder_threads(), 0);  // the engine sizes the pool from the machine
  EXPECT_EQ(resolved->keepalive().time_ms(), 60000);
  EXPECT_TRUE(resolved->keepalive().permit_without_calls());
  EXPECT_EQ(resolved->max_receive_message_bytes(), 16 << 20);
  const auto& model = resolved->models(0);
  EXPECT_EQ(model.dtype(), "auto");
  EXPECT_EQ(model.vae_dtype(), "auto");
  EXPECT_EQ(model.batching_mode(), "request");
  EXPECT_EQ(model.min_steps(), 2);
  EXPECT_EQ(model.max_steps(), 8);
  EXPECT_EQ(model.default_steps(), 4);
  EXPECT_EQ(model.max_pixels(), 2048 * 2048);
  EXPECT_EQ(model.max_batch_size(), 4);
  EXPECT_EQ(model.max_queue_size(), 64);
  EXPECT_EQ(model.prompt_cache_entries(), 256);
  ASSERT_EQ(model.devices_size(), 1);
  EXPECT_EQ(model.devices(0), "cpu");
  // A 2048 x 2048 RGB image fits the send limit.
  EXPECT_GE(resolved->max_send_message_bytes(), 2048 * 2048 * 3);
}

TEST(ConfigTest, CudaGraphsReachTheModelSpecOnCudaDevicesOnly) {
  auto config = Parse(kMinimal);
  config.mutable_models(0)->set_cuda_graphs(true);
  auto gpus = ResolveServerConfig(config, {"cpu", "cuda:0"});
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  EXPECT_TRUE(MakeEngineOptions(*gpus).models[0].spec.cuda_graphs);

  config.add_devices("cuda:0");
  config.add_devices("cpu");
  auto mixed = ResolveServerConfig(config, {"cpu", "cuda:0"});
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().message(),
            "models[0].cuda_graphs: needs CUDA devices; this model runs on cpu");
}

TEST(ConfigTest, AllDevicesMeansEveryGpuOrCpu) {
  auto gpus = ResolveServerConfig(Parse(kMinimal), {"cpu", "cuda:0", "cuda:1"});
  ASSERT_TRUE(gpus.ok());
  ASSERT_EQ(gpus->devices_size(), 2);
  EXPECT_EQ(gpus->devices(0), "cuda:0");
  EXPECT_EQ(gpus->devices(1), "cuda:1");
  EXPECT_EQ(gpus->models(0).devices_size(), 2);

  auto config = Parse(kMinimal);
  config.add_devices("cpu");
  config.add_devices("cpu");
  auto two_cpu = ResolveServerConfig(config, {"cpu"});
  ASSERT_TRUE(two_cpu.ok());
  EXPECT_EQ(two_cpu->devices_size(), 2);
  EXPECT_EQ(two_cpu->models(0).devices_size(), 1);  // the device, not each worker

  auto engine = MakeEngineOptions(*gpus);
  EXPECT_EQ(engine.devices, (std::vector<std::string>{"cuda:0", "cuda:1"}));
  ASSERT_EQ(engine.models.size(), 1u);
  EXPECT_EQ(engine.models[0].spec.name, "sdxl");
  EXPECT_EQ(engine.models[0].spec.base_model_path, "/etc/tlcm/models/sdxl");
  EXPECT_EQ(engine.models[0].spec.lora_path, "/abs/lora");
  EXPECT_EQ(engine.models[0].spec.lora_scale, -1.0f);
  EXPECT_EQ(engine.models[0].spec.vae_dtype, "auto");
  EXPECT_FALSE(engine.models[0].spec.cuda_graphs);
  EXPECT_EQ(engine.models[0].batching.max_queue_delay_micros, 10000);
  EXPECT_EQ(engine.models[0].batching.mode, ::tlcm::engine::BatchingMode::kRequest);
  EXPECT_EQ(engine.drain_grace_micros, 30000000);
}

struct BadConfig {
  std::string text;
  std::string field;  // the message must start with it
};

TEST(ConfigTest, InvalidValuesNameTheField) {
  const std::vector<BadConfig> cases = {
      {"", "models"},
      {"port: 70000 models { name: \"a\" base_model_path: \"x\" }", "port"},
      {"devices: \"gpu0\" models { name: \"a\" base_model_path: \"x\" }", "devices[0]"},
      {"devices: \"cuda:3\" models { name: \"a\" base_model_path: \"x\" }", "devices[0]"},
      {"devices: \"all\" devices: \"cpu\" models { name: \"a\" base_model_path: \"x\" }",
       "devices"},
      {"tls { cert_file: \"c\" } models { name: \"a\" base_model_path: \"x\" }", "tls"},
      {"tls { client_ca_file: \"c\" } models { name: \"a\" base_model_path: \"x\" }",
       "tls.client_ca_file"},
      {"drain_grace_seconds: -1 models { name: \"a\" base_model_path: \"x\" }",
       "drain_grace_seconds"},
      {"worker_stall_seconds: -5 models { name: \"a\" base_model_path: \"x\" }",
       "worker_stall_seconds"},
      {"encoder_threads: 1000 models { name: \"a\" base_model_path: \"x\" }", "encoder_threads"},
      {"keepalive { time_ms: 10 } models { name: \"a\" base_model_path: \"x\" }",
       "keepalive.time_ms"},
      {"models { name: \"bad name\" base_model_path: \"x\" }", "models[0].name"},
      {"models { name: \"a\" }", "models[0].base_model_path"},
      {"models { name: \"a\" base_model_path: \"x\" } "
       "models { name: \"a\" base_model_path: \"y\" }",
       "models[1].name"},
      {"models { name: \"a\" base_model_path: \"x\" dtype: \"fp64\" }", "models[0].dtype"},
      {"models { name: \"a\" base_model_path: \"x\" vae_dtype: \"int8\" }", "models[0].vae_dtype"},
      {"models { name: \"a\" base_model_path: \"x\" batching_mode: \"iteration\" }",
       "models[0].batching_mode"},
      {"models { name: \"a\" base_model_path: \"x\" min_steps: 4 max_steps: 2 }",
       "models[0].max_steps"},
      {"models { name: \"a\" base_model_path: \"x\" default_steps: 9 }", "models[0].default_steps"},
      {"models { name: \"a\" base_model_path: \"x\" max_batch_size: 0 }",
       "models[0].max_batch_size"},
      {"models { name: \"a\" base_model_path: \"x\" max_queue_size: 0 }",
       "models[0].max_queue_size"},
      {"models { name: \"a\" base_model_path: \"x\" max_queue_delay_ms: -1 }",
       "models[0].max_queue_delay_ms"},
      {"models { name: \"a\" base_model_path: \"x\" max_pixels: 100 }", "models[0].max_pixels"},
      {"models { name: \"a\" base_model_path: \"x\" default_width: 2048 default_height: 4096 }",
       "models[0].max_pixels"},
      {"models { name: \"a\" base_model_path: \"x\" max_sequence_length: 1000 }",
       "models[0].max_sequence_length"},
      {"models { name: \"a\" base_model_path: \"x\" devices: \"cuda:0\" }", "models[0].devices[0]"},
      {"models { name: \"a\" base_model_path: \"x\" cuda_graphs: true }", "models[0].cuda_graphs"},
      {"max_send_message_bytes: 1000 models { name: \"a\" base_model_path: \"x\" }",
       "max_send_message_bytes"},
  };
  for (const auto& c : cases) {
    auto resolved = ResolveServerConfig(Parse(c.text), {"cpu"});
    ASSERT_FALSE(resolved.ok()) << c.text;
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(resolved.status().message().substr(0, c.field.size() + 1), c.field + ":")
        << c.text << " -> " << resolved.status();
  }
}

TEST(ConfigTest, CommittedDemoConfigResolves) {
  const std::string path = std::string(TLCM_SOURCE_DIR) + "/config/demo.textproto";
  auto config = LoadServerConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  auto resolved = ResolveServerConfig(*config, {"cpu"});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  ASSERT_EQ(resolved->models_size(), 2);
  EXPECT_EQ(resolved->models(0).name(), "sdxl-demo");
  EXPECT_EQ(resolved->models(0).base_model_path(),
            std::string(TLCM_SOURCE_DIR) + "/models/demo/sdxl-demo");
  EXPECT_EQ(resolved->models(0).lora_path(),
            std::string(TLCM_SOURCE_DIR) + "/models/demo/sdxl-demo-lora");
  EXPECT_EQ(resolved->models(1).name(), "flux-demo");
  for (const auto& model : resolved->models()) {
    EXPECT_TRUE(std::filesystem::exists(model.base_model_path() + "/model_index.json"))
        << model.base_model_path();
    EXPECT_TRUE(std::filesystem::exists(model.lora_path())) << model.lora_path();
  }
}

TEST(ConfigTest, CommittedExampleConfigResolvesOnTwoGpus) {
  auto config = LoadServerConfig(std::string(TLCM_SOURCE_DIR) + "/config/example.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  auto resolved = ResolveServerConfig(*config, {"cpu", "cuda:0", "cuda:1"});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  ASSERT_EQ(resolved->models_size(), 2);
  EXPECT_EQ(resolved->models(0).devices_size(), 2);
  ASSERT_EQ(resolved->models(1).devices_size(), 1);
  EXPECT_EQ(resolved->models(1).devices(0), "cuda:1");
  EXPECT_EQ(ResolveServerConfig(*config, {"cpu"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DemoConfigTest, LookupOrder) {
  EXPECT_EQ(DemoConfigCandidates("/x/demo.textproto", "/opt/tlcm/bin/tlcm-server", "/src"),
            std::vector<std::string>{"/x/demo.textproto"});
  EXPECT_EQ(DemoConfigCandidates("", "/opt/tlcm/bin/tlcm-server", "/src"),
            (std::vector<std::string>{"/opt/tlcm/share/tlcm-serve/config/demo.textproto",
                                      "/src/config/demo.textproto"}));
  auto found = FindDemoConfig("", "/nonexistent/bin/tlcm-server", TLCM_SOURCE_DIR);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, std::string(TLCM_SOURCE_DIR) + "/config/demo.textproto");
  auto missing = FindDemoConfig("/nonexistent/demo.textproto", "", "");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/demo.textproto"), std::string::npos);
}

}  // namespace
}  // namespace tlcm::server
