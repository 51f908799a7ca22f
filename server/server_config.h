// The server configuration (tlcm.v1.ServerConfig, a text-format protobuf file): loading,
// defaults, validation, and conversion into engine options.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "tlcm/v1/server_config.pb.h"

namespace tlcm::server {

// Defaults of the optional fields (see server_config.proto).
inline constexpr int kDefaultPort = 50051;
inline constexpr int kDefaultMetricsPort = 9464;
inline constexpr int kDefaultHttpPort = 8080;
// Requests carry input images (img2img, inpainting): both doors take the same 16 MiB by default,
// so that a picture one takes the other takes too (docs/http.md).
inline constexpr int kDefaultMaxReceiveMessageBytes = 16 << 20;
inline constexpr int kDefaultHttpMaxBodyBytes = kDefaultMaxReceiveMessageBytes;
inline constexpr int kDefaultHttpThreads = 32;
inline constexpr int kDefaultHttpIoTimeoutSeconds = 10;
inline constexpr double kDefaultHttpRequestTimeoutSeconds = 600;
inline constexpr double kDefaultDrainGraceSeconds = 30;
inline constexpr double kDefaultWorkerStallSeconds = 300;

// Parses the text-format file at `path`. Relative paths inside it (model folders, TLS files,
// the token file) are made absolute against the file's directory. Errors: NOT_FOUND when the
// file cannot be read; INVALID_ARGUMENT with "path:line:column: message" on a syntax error.
absl::StatusOr<tlcm::v1::ServerConfig> LoadServerConfig(const std::string& path);

// Same, from text; relative paths are resolved against `base_dir` (empty = left as they are).
// `what` names the source in errors.
absl::StatusOr<tlcm::v1::ServerConfig> ParseServerConfig(const std::string& text,
                                                         const std::string& base_dir,
                                                         const std::string& what);

// Checks `config` and returns it with every default filled in: every optional field set,
// devices expanded ("all" -> the CUDA devices in `available_devices`, or "cpu" when there is
// none; model device lists made explicit), max_send_message_bytes large enough for the largest
// image. `available_devices` is what LibTorch sees (tlcm::AvailableDevices()).
// Errors: INVALID_ARGUMENT naming the field, e.g. "models[1].max_steps: 1 is below min_steps 2".
absl::StatusOr<tlcm::v1::ServerConfig> ResolveServerConfig(
    tlcm::v1::ServerConfig config, const std::vector<std::string>& available_devices);

// The engine options of a resolved configuration (observer and clock left unset).
engine::EngineOptions MakeEngineOptions(const tlcm::v1::ServerConfig& resolved);

// The largest message any configured model can need: one image of max_pixels at 3 bytes per
// pixel with room for a format's worst-case overhead, plus 1 MiB.
int RequiredSendMessageBytes(const tlcm::v1::ServerConfig& resolved);

}  // namespace tlcm::server
