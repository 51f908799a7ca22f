#include "server/server_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/status_macros.h"

namespace tlcm::server {
namespace {

namespace fs = std::filesystem;
using tlcm::v1::ModelConfig;
using tlcm::v1::ServerConfig;

constexpr int64_t kDefaultMaxPixels = 2048LL * 2048LL;

// Collects the first syntax error of a text-format parse.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) error_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

void MakeAbsolute(const std::string& base_dir, std::string* path) {
  if (base_dir.empty() || path->empty() || fs::path(*path).is_absolute()) return;
  *path = (fs::path(base_dir) / *path).lexically_normal().string();
}

absl::Status Invalid(const std::string& field, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

bool IsCudaDevice(const std::string& device) {
  int index;
  return absl::StartsWith(device, "cuda:") && absl::SimpleAtoi(device.substr(5), &index) &&
         index >= 0;
}

// Checks one device entry (not "all") against what LibTorch sees.
absl::Status CheckDevice(const std::string& field, const std::string& device,
                         const std::vector<std::string>& available) {
  if (device != "cpu" && !IsCudaDevice(device)) {
    return Invalid(field, absl::StrCat("\"", device, "\" is not \"cpu\", \"cuda:N\" or \"all\""));
  }
  if (std::find(available.begin(), available.end(), device) == available.end()) {
    return Invalid(field, absl::StrCat("device ", device, " is not available (available: ",
                                       absl::StrJoin(available, ", "), ")"));
  }
  return absl::OkStatus();
}

bool ValidModelName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

absl::Status CheckRange(const std::string& field, int64_t value, int64_t low, int64_t high) {
  if (value < low || value > high) {
    return Invalid(field, absl::StrCat(value, " is outside [", low, ", ", high, "]"));
  }
  return absl::OkStatus();
}

absl::Status ResolveModel(const std::string& field, const std::vector<std::string>& devices,
                          const std::vector<std::string>& available, ModelConfig* model) {
  if (!ValidModelName(model->name())) {
    return Invalid(field + ".name",
                   absl::StrCat("\"", model->name(), "\" must match [A-Za-z0-9._-]{1,64}"));
  }
  if (model->base_model_path().empty()) return Invalid(field + ".base_model_path", "is required");
  if (model->dtype().empty()) model->set_dtype("auto");
  static const std::set<std::string> kDtypes = {"auto", "fp32", "fp16", "bf16"};
  if (kDtypes.count(model->dtype()) == 0) {
    return Invalid(field + ".dtype",
                   absl::StrCat("\"", model->dtype(), "\" is not auto, fp32, fp16 or bf16"));
  }
  if (model->vae_dtype().empty()) model->set_vae_dtype("auto");
  if (kDtypes.count(model->vae_dtype()) == 0) {
    return Invalid(field + ".vae_dtype",
                   absl::StrCat("\"", model->vae_dtype(), "\" is not auto, fp32, fp16 or bf16"));
  }
  if (model->has_lora_scale() && !(model->lora_scale() >= 0 && model->lora_scale() <= 16)) {
    return Invalid(field + ".lora_scale", absl::StrCat(model->lora_scale(), " is outside [0, 16]"));
  }
  if (!model->has_max_sequence_length()) model->set_max_sequence_length(512);
  TLCM_RETURN_IF_ERROR(
      CheckRange(field + ".max_sequence_length", model->max_sequence_length(), 1, 512));

  if (!model->has_min_steps()) model->set_min_steps(2);
  if (!model->has_max_steps()) model->set_max_steps(std::max(8, model->min_steps()));
  if (!model->has_default_steps()) {
    model->set_default_steps(std::clamp(4, model->min_steps(), model->max_steps()));
  }
  TLCM_RETURN_IF_ERROR(CheckRange(field + ".min_steps", model->min_steps(), 1, 1000));
  if (model->max_steps() < model->min_steps()) {
    return Invalid(field + ".max_steps",
                   absl::StrCat(model->max_steps(), " is below min_steps ", model->min_steps()));
  }
  TLCM_RETURN_IF_ERROR(CheckRange(field + ".default_steps", model->default_steps(),
                                  model->min_steps(), model->max_steps()));

  TLCM_RETURN_IF_ERROR(CheckRange(field + ".default_width", model->default_width(), 0, 16384));
  TLCM_RETURN_IF_ERROR(CheckRange(field + ".default_height", model->default_height(), 0, 16384));
  if (model->max_pixels() == 0) model->set_max_pixels(kDefaultMaxPixels);
  TLCM_RETURN_IF_ERROR(
      CheckRange(field + ".max_pixels", model->max_pixels(), 64 * 64, 8192LL * 8192LL));
  const int64_t default_width = model->default_width() == 0 ? 1024 : model->default_width();
  const int64_t default_height = model->default_height() == 0 ? 1024 : model->default_height();
  const int64_t default_pixels = default_width * default_height;
  if (default_pixels > model->max_pixels()) {
    return Invalid(field + ".max_pixels",
                   absl::StrCat(model->max_pixels(), " is below the default size's ",
                                default_pixels, " pixels"));
  }

  if (!model->has_max_batch_size()) model->set_max_batch_size(4);
  TLCM_RETURN_IF_ERROR(CheckRange(field + ".max_batch_size", model->max_batch_size(), 1, 64));
  if (!model->has_max_queue_delay_ms()) model->set_max_queue_delay_ms(10);
  TLCM_RETURN_IF_ERROR(
      CheckRange(field + ".max_queue_delay_ms", model->max_queue_delay_ms(), 0, 60000));
  if (model->batching_mode().empty()) {
    model->set_batching_mode(std::string(engine::BatchingModeName(engine::BatchingOptions().mode)));
  }
  if (!engine::ParseBatchingMode(model->batching_mode()).has_value()) {
    return Invalid(field + ".batching_mode",
                   absl::StrCat("\"", model->batching_mode(), "\" is not request or step"));
  }
  if (!model->has_max_queue_size()) model->set_max_queue_size(64);
  TLCM_RETURN_IF_ERROR(CheckRange(field + ".max_queue_size", model->max_queue_size(), 1, 100000));
  if (!model->has_prompt_cache_entries()) model->set_prompt_cache_entries(256);
  TLCM_RETURN_IF_ERROR(
      CheckRange(field + ".prompt_cache_entries", model->prompt_cache_entries(), 0, 1000000));
  if (!model->has_adapter_cache_mib()) {
    model->set_adapter_cache_mib(static_cast<int32_t>(engine::kDefaultAdapterCacheBytes >> 20));
  }
  TLCM_RETURN_IF_ERROR(
      CheckRange(field + ".adapter_cache_mib", model->adapter_cache_mib(), 1, 1 << 20));
  if (!model->has_max_loras()) model->set_max_loras(engine::kDefaultMaxLoras);
  TLCM_RETURN_IF_ERROR(
      CheckRange(field + ".max_loras", model->max_loras(), 0, engine::kMaxLorasLimit));

  // Model devices: "all" or empty = every server device; else each must be a server device.
  std::vector<std::string> model_devices(model->devices().begin(), model->devices().end());
  if (model_devices.empty() ||
      std::find(model_devices.begin(), model_devices.end(), "all") != model_devices.end()) {
    if (model_devices.size() > 1) {
      return Invalid(field + ".devices", "\"all\" cannot be combined with other devices");
    }
    model_devices.clear();
    std::set<std::string> seen;
    for (const auto& device : devices) {
      if (seen.insert(device).second) model_devices.push_back(device);
    }
  } else {
    for (size_t i = 0; i < model_devices.size(); ++i) {
      const std::string& device = model_devices[i];
      const std::string device_field = absl::StrCat(field, ".devices[", i, "]");
      TLCM_RETURN_IF_ERROR(CheckDevice(device_field, device, available));
      if (std::find(devices.begin(), devices.end(), device) == devices.end()) {
        return Invalid(device_field, absl::StrCat(device, " is not one of the server's devices (",
                                                  absl::StrJoin(devices, ", "), ")"));
      }
    }
  }
  model->clear_devices();
  for (const auto& device : model_devices) model->add_devices(device);
  if (model->cuda_graphs()) {
    for (const auto& device : model_devices) {
      if (!IsCudaDevice(device)) {
        return Invalid(field + ".cuda_graphs",
                       absl::StrCat("needs CUDA devices; this model runs on ", device));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> ParseServerConfig(const std::string& text, const std::string& base_dir,
                                               const std::string& what) {
  ServerConfig config;
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ":", errors.error()));
  }
  MakeAbsolute(base_dir, config.mutable_tls()->mutable_cert_file());
  MakeAbsolute(base_dir, config.mutable_tls()->mutable_key_file());
  MakeAbsolute(base_dir, config.mutable_tls()->mutable_client_ca_file());
  MakeAbsolute(base_dir, config.mutable_auth_token_file());
  for (auto& model : *config.mutable_models()) {
    MakeAbsolute(base_dir, model.mutable_base_model_path());
    MakeAbsolute(base_dir, model.mutable_lora_path());
    MakeAbsolute(base_dir, model.mutable_vae_path());
    MakeAbsolute(base_dir, model.mutable_adapter_folder());
  }
  return config;
}

absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the config file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string base_dir = fs::absolute(fs::path(path)).parent_path().string();
  return ParseServerConfig(buffer.str(), base_dir, path);
}

absl::StatusOr<ServerConfig> ResolveServerConfig(ServerConfig config,
                                                 const std::vector<std::string>& available) {
  if (config.listen_address().empty()) config.set_listen_address("0.0.0.0");
  if (config.metrics_listen_address().empty()) {
    config.set_metrics_listen_address(config.listen_address());
  }
  if (!config.has_port()) config.set_port(kDefaultPort);
  TLCM_RETURN_IF_ERROR(CheckRange("port", config.port(), 0, 65535));
  if (!config.has_metrics_port()) config.set_metrics_port(kDefaultMetricsPort);
  if (config.metrics_port() > 65535) return Invalid("metrics_port", "is above 65535");
  if (config.metrics_port() >= 0 && config.metrics_port() == config.port() && config.port() != 0) {
    return Invalid("metrics_port", absl::StrCat(config.metrics_port(), " is also the gRPC port"));
  }
  if (config.http_listen_address().empty()) config.set_http_listen_address(config.listen_address());
  if (!config.has_http_port()) config.set_http_port(kDefaultHttpPort);
  if (config.http_port() > 65535) return Invalid("http_port", "is above 65535");
  if (config.http_port() > 0 &&
      (config.http_port() == config.port() || config.http_port() == config.metrics_port())) {
    return Invalid("http_port",
                   absl::StrCat(config.http_port(), " is also the gRPC or the metrics port"));
  }
  if (!config.has_http_max_body_bytes()) config.set_http_max_body_bytes(kDefaultHttpMaxBodyBytes);
  TLCM_RETURN_IF_ERROR(
      CheckRange("http_max_body_bytes", config.http_max_body_bytes(), 1024, 64 << 20));
  if (!config.has_http_threads()) config.set_http_threads(kDefaultHttpThreads);
  TLCM_RETURN_IF_ERROR(CheckRange("http_threads", config.http_threads(), 1, 1024));
  if (!config.has_http_io_timeout_seconds()) {
    config.set_http_io_timeout_seconds(kDefaultHttpIoTimeoutSeconds);
  }
  TLCM_RETURN_IF_ERROR(
      CheckRange("http_io_timeout_seconds", config.http_io_timeout_seconds(), 1, 3600));
  if (!config.has_http_request_timeout_seconds()) {
    config.set_http_request_timeout_seconds(kDefaultHttpRequestTimeoutSeconds);
  }
  if (!(config.http_request_timeout_seconds() >= 0 &&
        config.http_request_timeout_seconds() <= 86400)) {
    return Invalid("http_request_timeout_seconds",
                   absl::StrCat(config.http_request_timeout_seconds(), " is outside [0, 86400]"));
  }

  // Devices.
  std::vector<std::string> devices;
  if (config.devices().empty()) config.add_devices("all");
  for (int i = 0; i < config.devices_size(); ++i) {
    const std::string& device = config.devices(i);
    if (device == "all") {
      if (config.devices_size() > 1) {
        return Invalid("devices", "\"all\" cannot be combined with other devices");
      }
      for (const auto& d : available) {
        if (IsCudaDevice(d)) devices.push_back(d);
      }
      if (devices.empty()) devices.push_back("cpu");
      continue;
    }
    TLCM_RETURN_IF_ERROR(CheckDevice(absl::StrCat("devices[", i, "]"), device, available));
    devices.push_back(device);
  }
  config.clear_devices();
  for (const auto& device : devices) config.add_devices(device);

  if (config.tls().cert_file().empty() != config.tls().key_file().empty()) {
    return Invalid("tls", "cert_file and key_file must be set together");
  }
  if (!config.tls().client_ca_file().empty() && config.tls().cert_file().empty()) {
    return Invalid("tls.client_ca_file", "mutual TLS needs tls.cert_file and tls.key_file");
  }

  if (!config.has_drain_grace_seconds()) config.set_drain_grace_seconds(kDefaultDrainGraceSeconds);
  if (!(config.drain_grace_seconds() >= 0 && config.drain_grace_seconds() <= 3600)) {
    return Invalid("drain_grace_seconds",
                   absl::StrCat(config.drain_grace_seconds(), " is outside [0, 3600]"));
  }

  auto* keepalive = config.mutable_keepalive();
  if (!keepalive->has_time_ms()) keepalive->set_time_ms(60000);
  if (!keepalive->has_timeout_ms()) keepalive->set_timeout_ms(20000);
  if (!keepalive->has_min_client_ping_interval_ms()) {
    keepalive->set_min_client_ping_interval_ms(10000);
  }
  if (!keepalive->has_permit_without_calls()) keepalive->set_permit_without_calls(true);
  TLCM_RETURN_IF_ERROR(CheckRange("keepalive.time_ms", keepalive->time_ms(), 1000, 86400000));
  TLCM_RETURN_IF_ERROR(CheckRange("keepalive.timeout_ms", keepalive->timeout_ms(), 100, 3600000));
  TLCM_RETURN_IF_ERROR(CheckRange("keepalive.min_client_ping_interval_ms",
                                  keepalive->min_client_ping_interval_ms(), 0, 86400000));
  TLCM_RETURN_IF_ERROR(CheckRange("keepalive.max_connection_idle_ms",
                                  keepalive->max_connection_idle_ms(), 0, 1LL << 31));
  TLCM_RETURN_IF_ERROR(CheckRange("keepalive.max_connection_age_ms",
                                  keepalive->max_connection_age_ms(), 0, 1LL << 31));

  if (!config.has_max_receive_message_bytes()) {
    config.set_max_receive_message_bytes(kDefaultMaxReceiveMessageBytes);
  }
  TLCM_RETURN_IF_ERROR(CheckRange("max_receive_message_bytes", config.max_receive_message_bytes(),
                                  16 * 1024, 1 << 30));
  TLCM_RETURN_IF_ERROR(CheckRange("compute_threads", config.compute_threads(), 0, 1024));
  TLCM_RETURN_IF_ERROR(CheckRange("encoder_threads", config.encoder_threads(), 0, 256));
  if (!config.has_worker_stall_seconds()) {
    config.set_worker_stall_seconds(kDefaultWorkerStallSeconds);
  }
  if (!(config.worker_stall_seconds() >= 0 && config.worker_stall_seconds() <= 86400)) {
    return Invalid("worker_stall_seconds",
                   absl::StrCat(config.worker_stall_seconds(), " is outside [0, 86400]"));
  }

  if (config.models().empty()) return Invalid("models", "at least one model is required");
  std::set<std::string> names;
  for (int i = 0; i < config.models_size(); ++i) {
    const std::string field = absl::StrCat("models[", i, "]");
    TLCM_RETURN_IF_ERROR(ResolveModel(field, devices, available, config.mutable_models(i)));
    if (!names.insert(config.models(i).name()).second) {
      return Invalid(field + ".name",
                     absl::StrCat("\"", config.models(i).name(), "\" is used by an earlier model"));
    }
  }

  const int required = RequiredSendMessageBytes(config);
  if (!config.has_max_send_message_bytes()) {
    config.set_max_send_message_bytes(required);
  } else if (config.max_send_message_bytes() < required) {
    return Invalid("max_send_message_bytes",
                   absl::StrCat(config.max_send_message_bytes(), " is below the ", required,
                                " bytes the largest configured image may need"));
  }
  return config;
}

int RequiredSendMessageBytes(const ServerConfig& resolved) {
  int64_t max_pixels = 0;
  for (const auto& model : resolved.models()) {
    max_pixels = std::max<int64_t>(
        max_pixels, model.max_pixels() == 0 ? kDefaultMaxPixels : model.max_pixels());
  }
  // 3 bytes per pixel, +25% for incompressible data in a lossy format at quality 100 or PNG's
  // per-row filter bytes and block headers, + 1 MiB for the message's other fields.
  const int64_t bytes = max_pixels * 3 * 5 / 4 + (1 << 20);
  return static_cast<int>(std::min<int64_t>(bytes, std::numeric_limits<int32_t>::max()));
}

engine::EngineOptions MakeEngineOptions(const ServerConfig& resolved) {
  engine::EngineOptions options;
  options.devices.assign(resolved.devices().begin(), resolved.devices().end());
  options.drain_grace_micros = static_cast<int64_t>(resolved.drain_grace_seconds() * 1e6);
  options.encoder_threads = resolved.encoder_threads();
  for (const auto& model : resolved.models()) {
    engine::ModelOptions m;
    m.spec.name = model.name();
    m.spec.base_model_path = model.base_model_path();
    m.spec.lora_path = model.lora_path();
    m.spec.lora_scale = model.has_lora_scale() ? model.lora_scale() : -1.0f;
    m.spec.lora_scale_from_config = model.lora_scale_from_config();
    m.spec.dtype = model.dtype();
    m.spec.variant = model.variant();
    m.spec.vae_path = model.vae_path();
    m.spec.vae_dtype = model.vae_dtype();
    m.spec.cuda_graphs = model.cuda_graphs();
    m.spec.max_sequence_length = model.max_sequence_length();
    m.spec.min_steps = model.min_steps();
    m.spec.max_steps = model.max_steps();
    m.spec.default_steps = model.default_steps();
    m.spec.default_width = model.default_width();
    m.spec.default_height = model.default_height();
    m.spec.max_pixels = model.max_pixels();
    m.spec.prompt_cache_entries = model.prompt_cache_entries();
    m.spec.adapter_folder = model.adapter_folder();
    m.spec.adapter_cache_bytes = int64_t{model.adapter_cache_mib()} << 20;
    m.spec.max_loras = model.adapter_folder().empty() ? 0 : model.max_loras();
    m.devices.assign(model.devices().begin(), model.devices().end());
    m.batching.mode = *engine::ParseBatchingMode(model.batching_mode());
    m.batching.max_batch_size = model.max_batch_size();
    m.batching.max_queue_delay_micros = static_cast<int64_t>(model.max_queue_delay_ms()) * 1000;
    m.batching.max_queue_size = model.max_queue_size();
    options.models.push_back(std::move(m));
  }
  return options;
}

}  // namespace tlcm::server
