// load_bench: time and host memory of loading one SDXL UNet folder by the two routes to a
// half-precision (or any) placement:
//   float32_then_cast  every weight converted to float32 on the CPU, then the whole module cast
//                      and moved (how the pipelines loaded before WeightPlacement);
//   direct             every weight converted straight to the target device and dtype as it is
//                      read (LoadComponent with a WeightPlacement, how they load now).
// Each load runs in a child process of its own, so that its peak RSS is its own; the routes
// alternate for --repeats rounds. Prints one JSON line per route (median seconds, median peak
// RSS in GiB) and a last line with the ratios float32_then_cast / direct.
//
// Usage: load_bench --unet DIR [--dtype fp16|bf16|fp32] [--device cpu|cuda:N] [--variant fp16]
//                   [--repeats 3] [--threads N]
// Example: load_bench --unet /work/models/sdxl-1024/unet --dtype fp16
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "loaders/key_remap.h"
#include "models/unet_2d_condition.h"
#include "pipelines/component_loader.h"
#include "pipelines/pipeline_factory.h"
#include "pipelines/pipeline_options.h"
#include "stats.h"

namespace {

struct Flags {
  std::string unet, dtype = "fp16", device = "cpu", variant;
  int repeats = 3, threads = 0;
};

struct Sample {
  double seconds = 0, peak_rss_gib = 0;
};

// Runs in the child: loads the UNet by `route`, returns the sample or an error message.
absl::StatusOr<Sample> LoadOnce(const Flags& flags, const std::string& route) {
  tlcm::SetComputeThreads(flags.threads);
  TLCM_ASSIGN_OR_RETURN(const torch::Device device, tlcm::ParseDevice(flags.device));
  TLCM_ASSIGN_OR_RETURN(const torch::Dtype dtype,
                        tlcm::ParseDtype(flags.dtype, device, torch::kFloat16));
  using Unet = tlcm::UNet2DConditionModel;
  const bool direct = route == "direct";
  const tlcm::WeightPlacement target{device, dtype}, float32_on_cpu{torch::kCPU, torch::kFloat32};
  const tlcm::WeightPlacement placement = direct ? target : float32_on_cpu;
  const auto start = std::chrono::steady_clock::now();
  TLCM_ASSIGN_OR_RETURN(Unet unet,
                        (tlcm::LoadComponent<Unet, tlcm::UNet2DConditionConfig>(
                            flags.unet, flags.variant, tlcm::IdentityKeys(), placement)));
  if (!direct) unet->to(device, dtype);
  if (device.is_cuda()) torch::cuda::synchronize();
  Sample sample;
  sample.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  sample.peak_rss_gib = usage.ru_maxrss / (1024.0 * 1024.0);  // ru_maxrss is in KiB
  return sample;
}

// Forks, loads in the child, reads its sample back through a pipe.
absl::StatusOr<Sample> LoadInChild(const Flags& flags, const std::string& route) {
  int fds[2];
  if (pipe(fds) != 0) return absl::InternalError("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    close(fds[0]);
    const absl::StatusOr<Sample> sample = LoadOnce(flags, route);
    const std::string reply = sample.ok()
                                  ? absl::StrCat("ok ", sample->seconds, " ", sample->peak_rss_gib)
                                  : absl::StrCat("error ", sample.status().message());
    (void)!write(fds[1], reply.data(), reply.size());
    _exit(0);
  }
  close(fds[1]);
  std::string reply;
  char buffer[512];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) reply.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Sample sample;
  char word[8] = {};
  if (std::sscanf(reply.c_str(), "%7s %lf %lf", word, &sample.seconds, &sample.peak_rss_gib) == 3 &&
      std::string(word) == "ok") {
    return sample;
  }
  return absl::InternalError(reply.empty() ? "the loading process died" : reply);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i], value = argv[i + 1];
    bool ok = true;
    if (name == "--unet")
      flags.unet = value;
    else if (name == "--dtype")
      flags.dtype = value;
    else if (name == "--device")
      flags.device = value;
    else if (name == "--variant")
      flags.variant = value;
    else if (name == "--repeats")
      ok = absl::SimpleAtoi(value, &flags.repeats) && flags.repeats > 0;
    else if (name == "--threads")
      ok = absl::SimpleAtoi(value, &flags.threads) && flags.threads >= 0;
    else
      ok = false;
    if (!ok) {
      std::cerr << "bad flag " << name << " " << value << "\n";
      return 2;
    }
  }
  if (flags.unet.empty() || argc % 2 == 0) {
    std::cerr << "usage: load_bench --unet DIR [--dtype fp16|bf16|fp32] [--device cpu|cuda:N] "
                 "[--variant fp16] [--repeats 3] [--threads N]\n";
    return 2;
  }
  const std::vector<std::string> routes = {"float32_then_cast", "direct"};
  std::vector<std::vector<double>> seconds(routes.size()), rss(routes.size());
  for (int round = 0; round < flags.repeats; ++round) {
    for (size_t r = 0; r < routes.size(); ++r) {
      const absl::StatusOr<Sample> sample = LoadInChild(flags, routes[r]);
      if (!sample.ok()) {
        std::cerr << routes[r] << ": " << sample.status().message() << "\n";
        return 1;
      }
      seconds[r].push_back(sample->seconds);
      rss[r].push_back(sample->peak_rss_gib);
    }
  }
  for (size_t r = 0; r < routes.size(); ++r) {
    std::cout << absl::StrCat("{\"route\": \"", routes[r], "\", \"device\": \"", flags.device,
                              "\", \"dtype\": \"", flags.dtype, "\", \"runs\": ", flags.repeats,
                              ", \"load_s\": ", tlcm::bench::Median(seconds[r]),
                              ", \"peak_rss_gib\": ", tlcm::bench::Median(rss[r]), "}\n");
  }
  std::cout << absl::StrCat(
      "{\"ratio_load_s\": ", tlcm::bench::Median(seconds[0]) / tlcm::bench::Median(seconds[1]),
      ", \"ratio_peak_rss\": ", tlcm::bench::Median(rss[0]) / tlcm::bench::Median(rss[1]), "}\n");
  return 0;
}
