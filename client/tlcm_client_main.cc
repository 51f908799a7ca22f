// tlcm-client: command-line client of tlcm-server.
//
//   tlcm-client generate --model sdxl-demo --prompt "a red bicycle" [--steps 4] [--width 512]
//       [--height 512] [--seed 7] [--count 2] [--format png|jpeg|webp] [--quality 90]
//       [--out_dir .] [--previews]
//   tlcm-client generate --model sdxl-demo --prompt "a red bicycle" --repeat 300 --concurrency 8
//       (N calls over one channel, C at a time; prints a summary and writes no images)
//   tlcm-client models
//   tlcm-client health [--service tlcm.v1.TlcmService]
// Connection flags (every command): --target, --tls, --ca_cert, --client_cert, --client_key,
// --tls_server_name, --token_file (or the TLCM_TOKEN environment variable), --timeout_seconds,
// and the balancing flags --lb_policy, --health_check_service, --max_attempts,
// --retry_initial_backoff, --retry_max_backoff, --service_config (defaults: ClientOptions).
//
// Exit codes:
//   0        success (health: SERVING; --repeat: every call OK)
//   1        local failure (cannot read a flag's file, write an image, or the reply is malformed)
//   2        usage error (unknown command, bad flag value)
//   3        health: the server or service is NOT_SERVING / UNKNOWN
//   10 + N   the call ended with gRPC status code N, e.g. 13 INVALID_ARGUMENT,
//            14 DEADLINE_EXCEEDED, 15 NOT_FOUND, 18 RESOURCE_EXHAUSTED, 24 UNAVAILABLE,
//            26 UNAUTHENTICATED; with --repeat the most frequent failure's code
#include <unistd.h>
#include <filesystem>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "repeated_calls.h"
#include "tlcm_client.h"
#include "util/lora_flag.h"

ABSL_FLAG(std::string, target, "localhost:50051", "Server address (gRPC target).");
ABSL_FLAG(bool, tls, false, "Connect with TLS (implied by --ca_cert / --client_cert).");
ABSL_FLAG(std::string, ca_cert, "", "PEM CA bundle to verify the server; default system roots.");
ABSL_FLAG(std::string, client_cert, "", "PEM client certificate (mutual TLS).");
ABSL_FLAG(std::string, client_key, "", "PEM client private key (mutual TLS).");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name the server certificate must match, when it differs from the target's host.");
ABSL_FLAG(std::string, token_file, "",
          "File whose first line is the bearer token. Default: the TLCM_TOKEN environment "
          "variable, else no token.");
ABSL_FLAG(double, timeout_seconds, 0,
          "Deadline of each call in seconds, retries included; 0 = none.");
ABSL_FLAG(std::optional<std::string>, lb_policy, std::nullopt,
          "round_robin (default: every call to the next ready address the target resolves to) "
          "or pick_first.");
ABSL_FLAG(std::optional<std::string>, health_check_service, std::nullopt,
          "Health service watched on every address; addresses not SERVING get no calls. "
          "Default tlcm.v1.TlcmService; \"\" = off.");
ABSL_FLAG(std::optional<int>, max_attempts, std::nullopt,
          "Attempts per call for UNAVAILABLE / RESOURCE_EXHAUSTED refusals, 1..5 (default 3; "
          "1 = no retries).");
ABSL_FLAG(std::optional<absl::Duration>, retry_initial_backoff, std::nullopt,
          "Backoff before the second attempt, e.g. 100ms (the default).");
ABSL_FLAG(std::optional<absl::Duration>, retry_max_backoff, std::nullopt,
          "Largest backoff between attempts, e.g. 1s (the default).");
ABSL_FLAG(std::string, service_config, "",
          "A whole gRPC service config (JSON) instead of the balancing flags above.");

ABSL_FLAG(std::string, model, "", "generate: model name (see `tlcm-client models`).");
ABSL_FLAG(std::string, prompt, "", "generate: the prompt.");
ABSL_FLAG(std::string, prompt_2, "", "generate: prompt for the second text encoder (optional).");
ABSL_FLAG(int, steps, 0, "generate: denoising steps; 0 = the model's default.");
ABSL_FLAG(int, width, 0, "generate: width in pixels; 0 = the model's default.");
ABSL_FLAG(int, height, 0, "generate: height in pixels; 0 = the model's default.");
ABSL_FLAG(std::optional<uint64_t>, seed, std::nullopt,
          "generate: seed of image 0 (image i uses seed + i); default random.");
ABSL_FLAG(int, count, 1, "generate: number of images.");
ABSL_FLAG(std::optional<float>, guidance, std::nullopt,
          "generate: FLUX guidance scale; default the model's.");
ABSL_FLAG(std::string, sampler, "", "generate: sampler; default the model's.");
ABSL_FLAG(std::string, format, "png", "generate: png, jpeg or webp.");
ABSL_FLAG(int, quality, 0, "generate: JPEG / WebP quality 1..100; 0 = server default (90).");
ABSL_FLAG(std::string, out_dir, ".", "generate: folder to write the images to.");
ABSL_FLAG(bool, previews, false, "generate: ask for per-step previews (written as well).");
ABSL_FLAG(std::string, request_id, "", "generate: request id for the server's logs.");
ABSL_FLAG(std::vector<std::string>, lora, {},
          "generate: style adapters NAME:SCALE, comma-separated (SCALE as diffusers' "
          "set_adapters weight, default 1; names: `tlcm-client models`).");
ABSL_FLAG(std::string, image, "",
          "generate: PNG / JPEG / WebP file to start from (img2img); sent as the request's image.");
ABSL_FLAG(std::string, mask, "",
          "generate: with --image, a mask file of its size: white = repaint (inpainting).");
ABSL_FLAG(std::optional<double>, strength, std::nullopt,
          "generate: with --image, the part of the schedule that runs, (0, 1]; default the "
          "server's (0.6, or 1.0 with a mask).");
ABSL_FLAG(int, repeat, 1,
          "generate: number of calls; above 1 prints a summary (calls per backend, statuses, "
          "latency percentiles) and writes no images. Call i uses seed + i * count and request "
          "id <request_id>-<i>.");
ABSL_FLAG(int, concurrency, 1, "generate: calls in flight at once with --repeat.");
ABSL_FLAG(std::string, service, "", "health: service name; \"\" = the whole server.");

namespace {

constexpr int kExitLocalFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotServing = 3;
int ExitCodeFor(const grpc::Status& status) { return 10 + static_cast<int>(status.error_code()); }

int FailWithStatus(const char* what, const grpc::Status& status) {
  std::cerr << what << " failed: " << status.error_code() << " " << status.error_message() << "\n";
  return ExitCodeFor(status);
}

std::optional<std::string> ReadToken() {
  const std::string file = absl::GetFlag(FLAGS_token_file);
  if (file.empty()) {
    const char* env = std::getenv("TLCM_TOKEN");
    return std::string(env == nullptr ? "" : env);
  }
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(line));
}

const char* Extension(tlcm::v1::ImageFormat format) {
  switch (format) {
    case tlcm::v1::IMAGE_FORMAT_JPEG:
      return "jpg";
    case tlcm::v1::IMAGE_FORMAT_WEBP:
      return "webp";
    default:
      return "png";
  }
}

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// Redraws one status line on stderr: "[########------] step 3/4  batch 2 on cuda:0".
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  void Update(const tlcm::v1::GenerateResponse& event) {
    if (event.has_queued()) {
      status_ = absl::StrCat("queued (", event.queued().position(), " ahead)");
    } else if (event.has_started()) {
      status_ =
          absl::StrCat("batch of ", event.started().batch_size(), " on ", event.started().device());
      where_ = status_;
    } else if (event.has_step()) {
      step_ = event.step().step();
      total_ = event.step().total_steps();
      status_ = where_;
    } else if (event.has_image()) {
      ++images_;
      status_ = absl::StrCat("image ", images_, " received");
    } else {
      return;
    }
    Draw();
  }
  void Finish() {
    if (enabled_ && drawn_) std::cerr << "\n";
  }

 private:
  void Draw() {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    const int filled = total_ > 0 ? kWidth * step_ / total_ : 0;
    std::cerr << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '-') << "] "
              << absl::StrFormat("step %d/%d  %-40s", step_, total_, status_) << std::flush;
    drawn_ = true;
  }
  bool enabled_;
  bool drawn_ = false;
  int step_ = 0;
  int total_ = 0;
  int images_ = 0;
  std::string status_;
  std::string where_;
};

// The request of `generate` from the flags; kExitUsage (after a message) when they are wrong.
int BuildRequest(tlcm::v1::GenerateRequest& request) {
  request.set_model(absl::GetFlag(FLAGS_model));
  request.set_prompt(absl::GetFlag(FLAGS_prompt));
  request.set_prompt_2(absl::GetFlag(FLAGS_prompt_2));
  request.set_steps(absl::GetFlag(FLAGS_steps));
  request.set_width(absl::GetFlag(FLAGS_width));
  request.set_height(absl::GetFlag(FLAGS_height));
  if (auto seed = absl::GetFlag(FLAGS_seed)) request.set_seed(*seed);
  request.set_num_images(absl::GetFlag(FLAGS_count));
  if (auto guidance = absl::GetFlag(FLAGS_guidance)) request.set_guidance_scale(*guidance);
  request.set_sampler(absl::GetFlag(FLAGS_sampler));
  const std::string format = absl::AsciiStrToLower(absl::GetFlag(FLAGS_format));
  if (format == "png") {
    request.set_format(tlcm::v1::IMAGE_FORMAT_PNG);
  } else if (format == "jpeg" || format == "jpg") {
    request.set_format(tlcm::v1::IMAGE_FORMAT_JPEG);
  } else if (format == "webp") {
    request.set_format(tlcm::v1::IMAGE_FORMAT_WEBP);
  } else {
    std::cerr << "--format must be png, jpeg or webp, not \"" << format << "\"\n";
    return kExitUsage;
  }
  request.set_quality(absl::GetFlag(FLAGS_quality));
  request.set_stream_previews(absl::GetFlag(FLAGS_previews));
  request.set_request_id(absl::GetFlag(FLAGS_request_id));
  for (const std::string& text : absl::GetFlag(FLAGS_lora)) {
    auto lora = tlcm::ParseLoraFlag(text, "--lora");
    if (!lora.ok()) {
      std::cerr << lora.status().message() << "\n";
      return kExitUsage;
    }
    tlcm::v1::LoraWeight* weight = request.add_loras();
    weight->set_name(lora->first);
    weight->set_scale(lora->second);
  }
  for (const auto& [flag, path, field] :
       {std::tuple{"--image", absl::GetFlag(FLAGS_image), request.mutable_image()},
        std::tuple{"--mask", absl::GetFlag(FLAGS_mask), request.mutable_mask()}}) {
    if (path.empty()) continue;
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (!in) {
      std::cerr << flag << ": cannot read " << path << "\n";
      return kExitUsage;
    }
    *field = bytes.str();
  }
  if (auto strength = absl::GetFlag(FLAGS_strength)) request.set_strength(*strength);
  if (request.model().empty() || request.prompt().empty()) {
    std::cerr << "generate needs --model and --prompt (see `tlcm-client models`)\n";
    return kExitUsage;
  }
  return 0;
}

// --repeat N --concurrency C: N calls over one channel, then the summary on stdout.
int RunRepeated(tlcm::client::Client& client, const tlcm::v1::GenerateRequest& request, int repeat,
                int concurrency) {
  auto make_request = [&request](int i) {
    tlcm::v1::GenerateRequest call = request;
    if (call.has_seed()) call.set_seed(call.seed() + static_cast<uint64_t>(i) * call.num_images());
    if (!call.request_id().empty()) call.set_request_id(absl::StrCat(call.request_id(), "-", i));
    return call;
  };
  const auto result = tlcm::client::RunRepeatedCalls(client, repeat, concurrency, make_request);
  std::cout << tlcm::client::SummarizeRepeatedCalls(result);
  std::map<grpc::StatusCode, int> failures;
  for (const auto& call : result.calls) {
    if (!call.status.ok()) ++failures[call.status.error_code()];
  }
  if (failures.empty()) return 0;
  auto worst = failures.begin();
  for (auto it = failures.begin(); it != failures.end(); ++it) {
    if (it->second > worst->second) worst = it;
  }
  return 10 + static_cast<int>(worst->first);
}

int RunGenerate(tlcm::client::Client& client) {
  tlcm::v1::GenerateRequest request;
  if (const int usage = BuildRequest(request); usage != 0) return usage;
  const int repeat = absl::GetFlag(FLAGS_repeat);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  if (repeat < 1 || concurrency < 1) {
    std::cerr << "--repeat and --concurrency must be >= 1\n";
    return kExitUsage;
  }
  if (repeat > 1) return RunRepeated(client, request, repeat, concurrency);

  const std::string out_dir = absl::GetFlag(FLAGS_out_dir);
  std::error_code mkdir_error;
  std::filesystem::create_directories(out_dir, mkdir_error);  // a write error reports failures
  ProgressBar progress(isatty(STDERR_FILENO) != 0);
  bool write_failed = false;
  std::vector<std::string> written;
  auto result = client.GenerateBlocking(request, [&](const tlcm::v1::GenerateResponse& event) {
    progress.Update(event);
    std::string path;
    const std::string* data = nullptr;
    if (event.has_image()) {
      path = absl::StrCat(out_dir, "/", event.request_id(), "-", event.image().index(), ".",
                          Extension(event.image().format()));
      data = &event.image().data();
    } else if (event.has_preview()) {
      path = absl::StrCat(out_dir, "/", event.request_id(), "-", event.preview().index(), "-step",
                          event.preview().step(), ".", Extension(event.preview().format()));
      data = &event.preview().data();
    } else {
      return;
    }
    if (WriteFile(path, *data)) {
      if (event.has_image()) written.push_back(path);
    } else {
      write_failed = true;
      std::cerr << "\ncannot write " << path << "\n";
    }
  });
  progress.Finish();
  if (!result.status.ok()) return FailWithStatus("generate", result.status);
  for (size_t i = 0; i < written.size(); ++i) {
    const auto& image = result.images[i];
    std::cout << written[i] << "  " << image.width() << "x" << image.height()
              << "  seed=" << image.seed() << "\n";
  }
  const auto& m = result.metrics;
  std::cout << absl::StrFormat(
      "request_id=%s device=%s batch_size=%d batches=%d steps=%d size=%dx%d images=%d\n"
      "queue_ms=%.1f text_encode_ms=%.1f denoise_ms=%.1f decode_ms=%.1f image_encode_ms=%.1f "
      "total_ms=%.1f\n",
      result.request_id, m.device(), m.batch_size(), m.num_batches(), m.steps(), m.width(),
      m.height(), m.num_images(), m.queue_ms(), m.text_encode_ms(), m.denoise_ms(), m.decode_ms(),
      m.image_encode_ms(), m.total_ms());
  return write_failed ? kExitLocalFailure : 0;
}

int RunModels(tlcm::client::Client& client) {
  tlcm::v1::ListModelsResponse response;
  grpc::Status status = client.ListModels(&response);
  if (!status.ok()) return FailWithStatus("models", status);
  for (const auto& model : response.models()) {
    std::cout << absl::StrFormat(
        "%s  family=%s ready=%s steps=%d..%d (default %d) size=%dx%d (multiple of %d, max %d "
        "pixels) batch<=%d batching=%s samplers=%s devices=%s adapters=%s (at most %d per "
        "request)\n",
        model.name(), model.family(), model.ready() ? "yes" : "no", model.min_steps(),
        model.max_steps(), model.default_steps(), model.default_width(), model.default_height(),
        model.size_multiple(), model.max_pixels(), model.max_batch_size(), model.batching_mode(),
        absl::StrJoin(model.samplers(), ","), absl::StrJoin(model.devices(), ","),
        absl::StrJoin(model.adapters(), ","), model.max_loras());
  }
  return 0;
}

int RunHealth(tlcm::client::Client& client) {
  grpc::health::v1::HealthCheckResponse::ServingStatus serving;
  grpc::Status status = client.CheckHealth(absl::GetFlag(FLAGS_service), &serving);
  if (!status.ok()) return FailWithStatus("health", status);
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(serving) << "\n";
  return serving == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : kExitNotServing;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tlcm-client <generate|models|health> [flags]\n"
      "exit codes: 0 ok, 1 local failure, 2 usage, 3 not serving, 10+N gRPC status N");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::cerr << "usage: tlcm-client <generate|models|health> [flags]  (--help for flags)\n";
    return kExitUsage;
  }
  const std::string command = args[1];

  tlcm::client::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.tls = absl::GetFlag(FLAGS_tls);
  options.ca_file = absl::GetFlag(FLAGS_ca_cert);
  options.cert_file = absl::GetFlag(FLAGS_client_cert);
  options.key_file = absl::GetFlag(FLAGS_client_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  if (auto v = absl::GetFlag(FLAGS_lb_policy)) options.lb_policy = *v;
  if (auto v = absl::GetFlag(FLAGS_health_check_service)) options.health_check_service = *v;
  if (auto v = absl::GetFlag(FLAGS_max_attempts)) options.max_attempts = *v;
  if (auto v = absl::GetFlag(FLAGS_retry_initial_backoff)) options.retry_initial_backoff = *v;
  if (auto v = absl::GetFlag(FLAGS_retry_max_backoff)) options.retry_max_backoff = *v;
  options.service_config = absl::GetFlag(FLAGS_service_config);
  const double timeout = absl::GetFlag(FLAGS_timeout_seconds);
  if (timeout < 0) {
    std::cerr << "--timeout_seconds must be >= 0\n";
    return kExitUsage;
  }
  if (timeout > 0) options.timeout = absl::Seconds(timeout);
  auto token = ReadToken();
  if (!token) {
    std::cerr << "cannot read a token from --token_file " << absl::GetFlag(FLAGS_token_file)
              << "\n";
    return kExitLocalFailure;
  }
  options.token = *token;

  auto client = tlcm::client::Client::Create(options);
  if (!client.ok()) {
    std::cerr << client.status() << "\n";
    return client.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                                        : kExitLocalFailure;
  }
  if (command == "generate") return RunGenerate(**client);
  if (command == "models") return RunModels(**client);
  if (command == "health") return RunHealth(**client);
  std::cerr << "unknown command \"" << command << "\": generate, models or health\n";
  return kExitUsage;
}
