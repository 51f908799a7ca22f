// End-to-end golden runs (tests/data/<case>/golden/runs.json + PNGs made by diffusers) and image
// comparison helpers shared by the pipeline tests.
#pragma once

#include <cctype>
#include <fstream>
#include <list>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "image/png_codec.h"
#include "image/rgb_image.h"
#include "pipelines/denoising_sample.h"
#include "pipelines/pipeline_options.h"
#include "tests/test_util.h"

namespace tlcm::testing {

struct GoldenRun {
  std::string name;
  std::string scheduler;
  std::vector<std::string> prompts;  // one per image
  std::vector<uint64_t> seeds;       // one per image
  int steps = 0, width = 0, height = 0;
  float guidance_scale = 0;
  int max_sequence_length = 512;
  float lora_scale = 0;
  std::vector<std::string> images;  // paths relative to the runs.json folder
  // Style adapters (golden/styles/runs.json): (name in the case's styles/ folder, weight).
  std::vector<std::pair<std::string, float>> loras;
};

// The devices the end-to-end golden runs are checked on: the CPU always, and the first CUDA GPU
// where there is one (bench/gpu_bench.sh runs the suite on a GPU machine).
inline std::vector<std::string> GoldenDevices() {
  std::vector<std::string> devices = {"cpu"};
  if (torch::cuda::is_available()) devices.push_back("cuda:0");
  return devices;
}

// (case, device) parameters, named e.g. "sdxl_tiny_cpu".
using CaseAndDevice = std::tuple<std::string, std::string>;
inline std::string CaseAndDeviceName(const ::testing::TestParamInfo<CaseAndDevice>& info) {
  std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// On a GPU, float32 convolutions must not run in TF32 (cuDNN's default) while the golden runs are
// compared: TF32 keeps 10 mantissa bits, far from the reference's float32.
class NoTf32Scope {
 public:
  NoTf32Scope() : saved_(at::globalContext().allowTF32CuDNN()) {
    at::globalContext().setAllowTF32CuDNN(false);
  }
  ~NoTf32Scope() { at::globalContext().setAllowTF32CuDNN(saved_); }

 private:
  bool saved_;
};

// The runs of <case>/<folder>/runs.json: "golden" (make_goldens.py) or "golden/styles"
// (make_style_lora_goldens.py).
inline std::vector<GoldenRun> LoadGoldenRuns(const std::string& case_name,
                                             const std::string& folder = "golden") {
  std::ifstream in(DataPath(case_name + "/" + folder + "/runs.json"));
  EXPECT_TRUE(in.good()) << case_name;
  std::stringstream text;
  text << in.rdbuf();
  std::vector<GoldenRun> runs;
  for (const auto& j : nlohmann::json::parse(text.str())) {
    GoldenRun r;
    r.name = j.at("name");
    r.scheduler = j.at("scheduler");
    r.prompts = j.at("prompts").get<std::vector<std::string>>();
    r.seeds = j.at("seeds").get<std::vector<uint64_t>>();
    r.steps = j.at("steps");
    r.width = j.at("width");
    r.height = j.at("height");
    r.guidance_scale = j.value("guidance_scale", 0.0f);
    r.max_sequence_length = j.value("max_sequence_length", 512);
    r.lora_scale = j.value("lora_scale", 0.0f);
    r.images = j.at("images").get<std::vector<std::string>>();
    for (const auto& lora : j.value("loras", nlohmann::json::array())) {
      r.loras.emplace_back(lora.at("name"), lora.at("scale"));
    }
    // num_images_per_prompt > 1: one prompt repeated for every image.
    while (r.prompts.size() < r.seeds.size()) r.prompts.push_back(r.prompts.front());
    runs.push_back(std::move(r));
  }
  return runs;
}

inline std::vector<ImageRequest> RequestsOf(const GoldenRun& run) {
  std::vector<ImageRequest> requests;
  for (size_t i = 0; i < run.seeds.size(); ++i) {
    requests.push_back({run.prompts[i], "", run.seeds[i], run.guidance_scale});
  }
  return requests;
}

inline RgbImage ReadPng(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  auto image = DecodePng(bytes.str(), path);
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *image : RgbImage{};
}

// Passes when the images have the same size, the mean absolute difference is <= `mean_levels`
// and no channel differs by more than `max_levels` (uint8 levels).
inline ::testing::AssertionResult ImagesClose(const RgbImage& actual, const RgbImage& expected,
                                              double mean_levels, int max_levels) {
  if (actual.width != expected.width || actual.height != expected.height) {
    return ::testing::AssertionFailure() << "size " << actual.width << "x" << actual.height
                                         << " != " << expected.width << "x" << expected.height;
  }
  double sum = 0;
  int worst = 0;
  for (size_t i = 0; i < actual.pixels.size(); ++i) {
    const int d = std::abs(int(actual.pixels[i]) - int(expected.pixels[i]));
    sum += d;
    worst = std::max(worst, d);
  }
  const double mean = sum / std::max<size_t>(1, actual.pixels.size());
  if (mean <= mean_levels && worst <= max_levels) {
    return ::testing::AssertionSuccess() << "mean " << mean << ", max " << worst;
  }
  return ::testing::AssertionFailure()
         << "mean |diff| " << mean << " (limit " << mean_levels << "), max |diff| " << worst
         << " (limit " << max_levels << ")";
}

// Runs every golden run of `case_name` through `with_lora` (runs made with the LoRA) or
// `without_lora` and compares each image with diffusers' PNG.
template <typename Pipeline>
void ExpectGoldenRuns(const std::string& case_name, Pipeline& with_lora, Pipeline& without_lora,
                      double mean_levels, int max_levels) {
  for (const GoldenRun& run : LoadGoldenRuns(case_name)) {
    SCOPED_TRACE(run.name);
    Pipeline& p = run.lora_scale > 0 ? with_lora : without_lora;
    auto result = p.Run(RequestsOf(run), {run.steps, run.width, run.height, run.scheduler});
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->images.size(), run.images.size());
    for (size_t i = 0; i < run.images.size(); ++i) {
      const RgbImage expected = ReadPng(DataPath(case_name + "/golden/" + run.images[i]));
      ASSERT_TRUE(result->images[i].has_value());
      EXPECT_TRUE(ImagesClose(*result->images[i], expected, mean_levels, max_levels))
          << run.images[i];
    }
  }
}

// Step-level batching on golden runs: the images of each named run join one shared denoising
// loop at the step boundary given with it (0 = before the first denoiser call), every boundary
// steps all unfinished samples together whatever their step counts and schedulers, and samples
// that finish are decoded at once, in a decode batch of their own. Each image must match
// diffusers' PNG within (mean_levels, max_levels) and the same run made alone (Run) within one
// uint8 level.
template <typename Pipeline>
void ExpectMixedRunMatches(Pipeline& pipeline, const std::string& case_name,
                           const std::vector<std::pair<std::string, int>>& joins,
                           double mean_levels, int max_levels) {
  std::map<std::string, GoldenRun> by_name;
  for (GoldenRun& run : LoadGoldenRuns(case_name)) by_name[run.name] = std::move(run);
  std::list<DenoisingSample> samples;  // stable addresses
  std::map<const DenoisingSample*, std::pair<const GoldenRun*, size_t>> origin;
  std::map<std::pair<std::string, size_t>, RgbImage> images;
  size_t joined = 0;
  int largest_set = 0;
  for (int boundary = 0; joined < joins.size() || !samples.empty(); ++boundary) {
    for (const auto& [name, at] : joins) {
      if (at != boundary) continue;
      const GoldenRun& run = by_name.at(name);
      engine::StageTimings stats;
      auto started = pipeline.StartSamples(
          RequestsOf(run), {run.steps, run.width, run.height, run.scheduler}, &stats);
      ASSERT_TRUE(started.ok()) << started.status();
      for (size_t i = 0; i < started->size(); ++i) {
        samples.push_back(std::move((*started)[i]));
        origin[&samples.back()] = {&run, i};
      }
      ++joined;
    }
    std::vector<DenoisingSample*> set;
    for (DenoisingSample& s : samples) set.push_back(&s);
    if (set.empty()) continue;
    largest_set = std::max(largest_set, static_cast<int>(set.size()));
    ASSERT_TRUE(pipeline.Step(set, {}));
    std::vector<const DenoisingSample*> finished;
    for (const DenoisingSample* s : set) {
      if (s->done()) finished.push_back(s);
    }
    if (finished.empty()) continue;
    std::vector<RgbImage> decoded = pipeline.Decode(finished);
    for (size_t f = 0; f < finished.size(); ++f) {
      const auto [run, index] = origin.at(finished[f]);
      images[{run->name, index}] = std::move(decoded[f]);
    }
    samples.remove_if([](const DenoisingSample& s) { return s.done(); });
  }
  EXPECT_GT(largest_set, 2);  // the runs did share denoiser calls
  for (const auto& [name, at] : joins) {
    SCOPED_TRACE(name);
    const GoldenRun& run = by_name.at(name);
    auto alone = pipeline.Run(RequestsOf(run), {run.steps, run.width, run.height, run.scheduler});
    ASSERT_TRUE(alone.ok()) << alone.status();
    for (size_t i = 0; i < run.images.size(); ++i) {
      const RgbImage& mixed = images.at({name, i});
      EXPECT_TRUE(ImagesClose(mixed, *alone->images[i], 0.05, 1)) << run.images[i] << " vs alone";
      const RgbImage expected = ReadPng(DataPath(case_name + "/golden/" + run.images[i]));
      EXPECT_TRUE(ImagesClose(mixed, expected, mean_levels, max_levels)) << run.images[i];
    }
  }
}

}  // namespace tlcm::testing
