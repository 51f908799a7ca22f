// image_bench: encoding time of one 1024x1024 RGB image in each output format (PNG, JPEG and WebP
// at the default quality), one thread, for two synthetic images: "smooth" (gradients and waves
// with +-2.5 levels of noise, like a photograph) and "noisy" (+-60 levels: what the random-weight
// test models produce, the worst case for compression). Prints one JSON line per format and
// image: median milliseconds of --repeats runs (default 9) after one warm-up, and the size.
//   build/bench/image_bench [--repeats N] [--size PIXELS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "image/image_format.h"
#include "stats.h"

namespace {

tlcm::RgbImage Synthetic(int size, float noise_sigma) {
  tlcm::RgbImage image{size, size, std::vector<uint8_t>(static_cast<size_t>(size) * size * 3)};
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, noise_sigma);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      for (int c = 0; c < 3; ++c) {
        const float v = 128 + 60 * std::sin(x * 0.01f * (c + 1)) * std::cos(y * 0.013f) +
                        40 * std::sin((x + y) * 0.05f) + noise(rng);
        image.pixels[(static_cast<size_t>(y) * size + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
      }
    }
  }
  return image;
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 9, size = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    int* target = flag == "--repeats" ? &repeats : flag == "--size" ? &size : nullptr;
    if (target == nullptr || !absl::SimpleAtoi(argv[i + 1], target) || *target <= 0) {
      std::fprintf(stderr, "usage: image_bench [--repeats N] [--size PIXELS]\n");
      return 2;
    }
  }
  for (const auto& [name, sigma] : {std::pair{"smooth", 2.5f}, std::pair{"noisy", 60.0f}}) {
    const tlcm::RgbImage image = Synthetic(size, sigma);
    for (tlcm::ImageFormat format :
         {tlcm::ImageFormat::kPng, tlcm::ImageFormat::kJpeg, tlcm::ImageFormat::kWebp}) {
      std::vector<double> ms;
      size_t bytes = 0;
      for (int r = 0; r <= repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        auto encoded = tlcm::EncodeImage(image, format, 0);
        const auto end = std::chrono::steady_clock::now();
        if (!encoded.ok()) {
          std::fprintf(stderr, "%s\n", encoded.status().ToString().c_str());
          return 1;
        }
        bytes = encoded->size();
        if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
      }
      std::printf(
          "{\"image\": \"%s\", \"format\": \"%s\", \"width\": %d, \"height\": %d, "
          "\"median_ms\": %.2f, \"bytes\": %zu}\n",
          name, std::string(tlcm::ImageFormatName(format)).c_str(), size, size,
          tlcm::bench::Median(ms), bytes);
    }
  }
  return 0;
}
