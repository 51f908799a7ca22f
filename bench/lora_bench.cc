// lora_bench: what per-request style adapters cost. On one model it times a batch of 4 images
// without adapters against the same batch with 4 different adapters (one per image, weight 1,
// applied unfused per sample in one denoiser call), and reports each adapter's first-use load
// time (file -> device, the adapter cache's miss path) and its device bytes.
//
//   lora_bench --model DIR --lora TLCM_LORA [--rank 16] [--size 256] [--steps 4] [--repeats 5]
//              [--threads 0] [--device cpu]
//
// The 4 adapters are random rank-`rank` LoRAs written to a temporary folder, each on every
// attention projection (to_q, to_k, to_v, to_out.0, and FLUX's add_*_proj / to_add_out) of the
// denoiser: the layers style LoRAs usually train. The two batches run back to back in every
// round, in alternating order (a shared machine's load moves slowly against one round), after
// one warm-up round. Prints one JSON line: medians in milliseconds of the whole run and of the
// denoising part; the per-round ratios (with / without) of both, with their median, min and
// max; the load times; the machine's load average (/proc/loadavg, 1 minute) before and after.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "loaders/diffusers_folder.h"
#include "loaders/safetensors.h"
#include "loaders/weight_store.h"
#include "pipelines/flux_pipeline.h"
#include "pipelines/pipeline_factory.h"
#include "pipelines/sdxl_pipeline.h"
#include "stats.h"

namespace {

namespace fs = std::filesystem;
using tlcm::bench::Median;

struct Flags {
  std::string model, lora, device = "cpu";
  int rank = 16, size = 256, steps = 4, repeats = 5, threads = 0;
};

bool ParseFlags(int argc, char** argv, Flags& f) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i], value = argv[i + 1];
    bool ok = true;
    if (name == "--model") {
      f.model = value;
    } else if (name == "--lora") {
      f.lora = value;
    } else if (name == "--device") {
      f.device = value;
    } else if (name == "--rank") {
      ok = absl::SimpleAtoi(value, &f.rank) && f.rank > 0;
    } else if (name == "--size") {
      ok = absl::SimpleAtoi(value, &f.size) && f.size > 0;
    } else if (name == "--steps") {
      ok = absl::SimpleAtoi(value, &f.steps) && f.steps > 0;
    } else if (name == "--repeats") {
      ok = absl::SimpleAtoi(value, &f.repeats) && f.repeats > 0;
    } else if (name == "--threads") {
      ok = absl::SimpleAtoi(value, &f.threads) && f.threads >= 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "bad flag " << name << " " << value << "\n";
      return false;
    }
  }
  if (argc % 2 == 0 || f.model.empty()) {
    std::cerr << "usage: lora_bench --model DIR [--lora DIR] [--rank R] [--size PX] [--steps N] "
                 "[--repeats N] [--threads N] [--device cpu|cuda:N]\n";
    return false;
  }
  return true;
}

// The 1-minute load average, or -1 when /proc/loadavg cannot be read.
double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

// "[a, b, ...]" with three decimals.
std::string JsonList(const std::vector<double>& values) {
  return absl::StrCat("[",
                      absl::StrJoin(values, ", ",
                                    [](std::string* out, double v) {
                                      absl::StrAppend(out, absl::StrFormat("%.3f", v));
                                    }),
                      "]");
}

bool IsAttentionProjection(const std::string& name) {
  for (const char* suffix : {".to_q", ".to_k", ".to_v", ".to_out.0", ".add_q_proj", ".add_k_proj",
                             ".add_v_proj", ".to_add_out"}) {
    if (absl::EndsWith(name, suffix)) return true;
  }
  return false;
}

// Writes <dir>/style<k>.safetensors for k = 0..3: random rank-`rank` LoRAs on the attention
// projections of the denoiser in `component_dir` (A ~ N(0, 1/in), B ~ N(0, 0.01)).
absl::Status WriteStyles(const std::string& component_dir, const fs::path& dir, int rank) {
  auto store = tlcm::WeightStore::OpenComponent(component_dir);
  if (!store.ok()) return store.status();
  for (int k = 0; k < 4; ++k) {
    torch::manual_seed(100 + k);
    std::map<std::string, torch::Tensor> tensors;
    for (const std::string& key : store->Keys()) {
      absl::string_view stem = key;
      if (!absl::ConsumeSuffix(&stem, ".weight")) continue;
      const std::string module(stem);
      if (!IsAttentionProjection(module)) continue;
      auto weight = store->Get(key);
      if (!weight.ok()) return weight.status();
      const int64_t out = weight->size(0), in = weight->size(1);
      tensors[module + ".lora_A.weight"] =
          torch::randn({rank, in}) / std::sqrt(static_cast<double>(in));
      tensors[module + ".lora_B.weight"] = torch::randn({out, rank}) * 0.1;
    }
    const absl::Status status =
        tlcm::WriteSafetensors((dir / absl::StrCat("style", k, ".safetensors")).string(), tensors);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

template <typename Pipeline>
int Bench(const Flags& f, const std::string& denoiser_dir) {
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("lora_bench_", getpid());
  fs::create_directories(dir);
  tlcm::PipelineOptions options;
  options.device = torch::Device(f.device);
  options.lora_path = f.lora;
  options.adapter_folder = dir.string();
  auto loaded = Pipeline::Load(f.model, options);
  if (!loaded.ok()) {
    std::cerr << loaded.status() << "\n";
    return 1;
  }
  Pipeline& pipeline = **loaded;
  if (absl::Status s = WriteStyles(denoiser_dir, dir, f.rank); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  std::vector<tlcm::ImageRequest> plain, styled;
  std::vector<double> load_ms;
  int64_t bytes = 0;
  for (int k = 0; k < 4; ++k) {
    plain.push_back({"a lighthouse on a cliff, oil painting", "", static_cast<uint64_t>(k)});
    styled.push_back(plain.back());
    const auto start = std::chrono::steady_clock::now();
    auto adapter = pipeline.adapters().Get(absl::StrCat("style", k));
    load_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    if (!adapter.ok()) {
      std::cerr << adapter.status() << "\n";
      return 1;
    }
    bytes = (*adapter)->bytes();
    styled.back().adapters.push_back({*adapter, 1.0f});
  }
  const tlcm::RunSettings settings{f.steps, f.size, f.size, ""};
  std::map<std::string, std::vector<double>> total, denoise;
  std::vector<double> ratios, denoise_ratios;
  const double load_before = LoadAverage();
  for (int r = 0; r < f.repeats + 1; ++r) {                  // round 0 warms up
    std::map<std::string, std::pair<double, double>> round;  // name -> (total, denoise) ms
    for (const char* name :
         r % 2 == 0 ? std::vector{"none", "four"} : std::vector{"four", "none"}) {
      const auto start = std::chrono::steady_clock::now();
      auto result = pipeline.Run(name == std::string("none") ? plain : styled, settings);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      if (!result.ok()) {
        std::cerr << result.status() << "\n";
        return 1;
      }
      round[name] = {ms, result->timings.denoise_ms};
    }
    if (r == 0) continue;
    for (const char* name : {"none", "four"}) {
      total[name].push_back(round[name].first);
      denoise[name].push_back(round[name].second);
    }
    ratios.push_back(round["four"].first / round["none"].first);
    denoise_ratios.push_back(round["four"].second / round["none"].second);
  }
  const double load_after = LoadAverage();
  fs::remove_all(dir);
  const auto [ratio_min, ratio_max] = std::minmax_element(ratios.begin(), ratios.end());
  const auto [d_min, d_max] = std::minmax_element(denoise_ratios.begin(), denoise_ratios.end());
  std::cout << absl::StrFormat(
      "{\"impl\": \"tlcm-serve\", \"model\": \"%s\", \"device\": \"%s\", \"threads\": %d, "
      "\"size\": %d, \"steps\": %d, \"batch\": 4, \"rank\": %d, \"rounds\": %d, "
      "\"none_ms\": %.1f, \"four_adapters_ms\": %.1f, \"ratio_median\": %.3f, "
      "\"ratio_min\": %.3f, \"ratio_max\": %.3f, \"ratios\": %s, \"denoise_none_ms\": %.1f, "
      "\"denoise_four_adapters_ms\": %.1f, \"denoise_ratio_median\": %.3f, "
      "\"denoise_ratio_min\": %.3f, \"denoise_ratio_max\": %.3f, \"denoise_ratios\": %s, "
      "\"adapter_bytes\": %d, \"first_use_load_ms\": [%.1f, %.1f, %.1f, %.1f], "
      "\"loadavg_before\": %.2f, \"loadavg_after\": %.2f}\n",
      f.model, f.device, f.threads, f.size, f.steps, f.rank, f.repeats, Median(total["none"]),
      Median(total["four"]), Median(ratios), *ratio_min, *ratio_max, JsonList(ratios),
      Median(denoise["none"]), Median(denoise["four"]), Median(denoise_ratios), *d_min, *d_max,
      JsonList(denoise_ratios), bytes, load_ms[0], load_ms[1], load_ms[2], load_ms[3], load_before,
      load_after);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, f)) return 2;
  tlcm::SetComputeThreads(f.threads);
  auto folder = tlcm::OpenDiffusersFolder(f.model);
  if (!folder.ok()) {
    std::cerr << folder.status() << "\n";
    return 1;
  }
  if (folder->family == tlcm::PipelineFamily::kSdxl) {
    return Bench<tlcm::StableDiffusionXLPipeline>(f, folder->ComponentDir("unet"));
  }
  return Bench<tlcm::FluxPipeline>(f, folder->ComponentDir("transformer"));
}
