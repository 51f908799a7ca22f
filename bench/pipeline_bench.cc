// pipeline_bench: times whole pipeline runs (text encoding + denoising + decoding) of one model.
// Takes tlcm-generate's flags plus --repeats N (default 5), --warmup N (default 1) and
// --steps_list 2,4,8 (several step counts on one loaded model; default: --infer-steps); prints one
// JSON line per step count with the median and per-stage medians in milliseconds (encode_t5_ms:
// the T5 part of encode_ms, FLUX only; cpu_ms: process CPU time of a run, all threads, less
// sensitive than wall time to other processes on a shared machine; load_s: the model's loading
// time; gpu_allocated_gib / gpu_peak_gib: the CUDA caching allocator's bytes in use after the
// runs and at most so far, -1 off CUDA; vae_dtype / cuda_graphs: the flags, for A/B runs).
// bench/compare_diffusers.sh runs it next to diffusers (tools/bench_diffusers.py) on the same
// model, threads and machine and prints the ratios; bench/gpu_bench.sh runs both at full size on a
// CUDA machine.
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/generate_flags.h"
#include "engine/whole_batch.h"
#include "pipelines/device_memory.h"
#include "pipelines/pipeline_factory.h"
#include "pipelines/pipeline_options.h"
#include "stats.h"

namespace {

using tlcm::bench::Median;

// "2,4,8" -> {2, 4, 8}; empty or malformed -> nullopt.
std::optional<std::vector<int>> ParseStepsList(const std::string& text) {
  std::vector<int> steps;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n <= 0) return std::nullopt;
    steps.push_back(n);
  }
  return steps;
}

// Bytes in GiB; -1 (not measured) stays -1.
double Gib(int64_t bytes) { return bytes < 0 ? -1.0 : bytes / double(1LL << 30); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args;
  int repeats = 5, warmup = 1;
  std::optional<std::vector<int>> steps_list;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--repeats" || a == "--warmup") && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], a == "--repeats" ? &repeats : &warmup)) {
        std::cerr << a << " needs an integer\n";
        return 2;
      }
    } else if (a == "--steps_list" && i + 1 < argc) {
      steps_list = ParseStepsList(argv[++i]);
      if (!steps_list) {
        std::cerr << "--steps_list needs positive integers separated by commas, e.g. 2,4,8\n";
        return 2;
      }
    } else {
      args.push_back(a);
    }
  }
  auto flags = tlcm::ParseGenerateFlags(args);
  if (!flags.ok()) {
    std::cerr << flags.status().message() << "\n";
    return 2;
  }
  if (!steps_list) steps_list = std::vector<int>{flags->steps};
  const auto device = tlcm::ParseDevice(flags->device);
  if (!device.ok()) {
    std::cerr << device.status().message() << "\n";
    return 2;
  }
  tlcm::SetComputeThreads(flags->threads);
  const auto load_start = std::chrono::steady_clock::now();
  auto pipeline = tlcm::CreatePipeline(tlcm::ModelSpecOf(*flags, "bench"), flags->device);
  if (!pipeline.ok()) {
    std::cerr << pipeline.status().message() << "\n";
    return 1;
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  const auto& info = (*pipeline)->info();
  std::vector<tlcm::engine::ImageJob> jobs;
  for (int i = 0; i < flags->batch_size; ++i) {
    jobs.push_back({flags->prompt, "", flags->seed.value_or(0) + i,
                    flags->guidance_scale.value_or(info.default_guidance_scale)});
  }
  for (const int steps : *steps_list) {
    tlcm::engine::BatchKey key{"bench", steps, flags->width, flags->height,
                               flags->scheduler.empty() ? info.samplers.front() : flags->scheduler};
    std::vector<double> total, cpu, encode, encode_t5, denoise, decode;
    for (int r = 0; r < warmup + repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      const std::clock_t cpu_start = std::clock();
      auto batch = tlcm::engine::RunWholeBatch(**pipeline, key, jobs);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      const double cpu_ms = 1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
      if (!batch.ok()) {
        std::cerr << batch.status().message() << "\n";
        return 1;
      }
      if (r < warmup) continue;
      total.push_back(ms);
      cpu.push_back(cpu_ms);
      encode.push_back(batch->timings.text_encode_ms);
      encode_t5.push_back(batch->timings.text_encode_t5_ms);
      denoise.push_back(batch->timings.denoise_ms);
      decode.push_back(batch->timings.decode_ms);
    }
    // GPU memory (CUDA builds): what the loaded model holds, and the peak so far (any run).
    const tlcm::engine::DeviceMemory memory = tlcm::MeasureDeviceMemory(*device);
    std::cout << absl::StrCat(
                     "{\"impl\": \"tlcm-serve\", \"family\": \"", info.family, "\", \"device\": \"",
                     flags->device, "\", \"dtype\": \"", flags->dtype, "\", \"vae_dtype\": \"",
                     flags->vae_dtype,
                     "\", \"cuda_graphs\": ", flags->cuda_graphs ? "true" : "false",
                     ", \"steps\": ", steps, ", \"width\": ", flags->width,
                     ", \"height\": ", flags->height, ", \"batch\": ", flags->batch_size,
                     ", \"threads\": ", at::get_num_threads(), ", \"load_s\": ", load_s,
                     ", \"median_ms\": ", Median(total), ", \"cpu_ms\": ", Median(cpu),
                     ", \"encode_ms\": ", Median(encode), ", \"encode_t5_ms\": ", Median(encode_t5),
                     ", \"denoise_ms\": ", Median(denoise), ", \"decode_ms\": ", Median(decode),
                     ", \"gpu_allocated_gib\": ", Gib(memory.allocated_bytes),
                     ", \"gpu_peak_gib\": ", Gib(memory.peak_allocated_bytes), "}")
              << std::endl;
  }
  return 0;
}
