// image_bench: encoding time of one 1024x1024 RGB image in each output format (PNG, JPEG and WebP
// at the default quality), one thread, for two synthetic images: "smooth" (gradients and waves
// with +-2.5 levels of noise, like a photograph) and "noisy" (+-60 levels: what the random-weight
// test models produce, the worst case for compression). "png" is the server's encoder
// (png_writer.h); "png-libpng", libpng at its default compression, is its baseline, measured in
// the same run. Prints one JSON line per encoder and image: median milliseconds of --repeats
// runs (default 9) after one warm-up, and the size; the "png" line adds its time ratio and size
// change against "png-libpng".
//   build/bench/image_bench [--repeats N] [--size PIXELS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "image/image_format.h"
#include "image/png_codec.h"
#include "stats.h"
#include "synthetic_image.h"

namespace {

struct Encoder {
  std::string name;
  std::function<absl::StatusOr<std::string>(const tlcm::RgbImage&)> encode;
};

std::vector<Encoder> Encoders() {
  std::vector<Encoder> encoders = {{"png-libpng", tlcm::EncodePngLibpng}};
  for (tlcm::ImageFormat format :
       {tlcm::ImageFormat::kPng, tlcm::ImageFormat::kJpeg, tlcm::ImageFormat::kWebp}) {
    encoders.push_back(
        {std::string(tlcm::ImageFormatName(format)),
         [format](const tlcm::RgbImage& image) { return tlcm::EncodeImage(image, format, 0); }});
  }
  return encoders;
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
  for (const auto& [name, sigma] : {std::pair{"smooth", tlcm::bench::kSmoothNoise},
                                    std::pair{"noisy", tlcm::bench::kNoisyNoise}}) {
    const tlcm::RgbImage image = tlcm::bench::SyntheticImage(size, size, sigma);
    double libpng_ms = 0, libpng_bytes = 0;
    for (const Encoder& encoder : Encoders()) {
      std::vector<double> ms;
      size_t bytes = 0;
      for (int r = 0; r <= repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        auto encoded = encoder.encode(image);
        const auto end = std::chrono::steady_clock::now();
        if (!encoded.ok()) {
          std::fprintf(stderr, "%s\n", encoded.status().ToString().c_str());
          return 1;
        }
        bytes = encoded->size();
        if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
      }
      const double median = tlcm::bench::Median(ms);
      std::string versus;
      if (encoder.name == "png-libpng") {
        libpng_ms = median;
        libpng_bytes = static_cast<double>(bytes);
      } else if (encoder.name == "png") {
        versus = absl::StrFormat(", \"speedup_vs_libpng\": %.1f, \"bytes_vs_libpng_pct\": %+.1f",
                                 libpng_ms / median, 100.0 * (bytes / libpng_bytes - 1));
      }
      std::printf(
          "{\"image\": \"%s\", \"format\": \"%s\", \"width\": %d, \"height\": %d, "
          "\"median_ms\": %.2f, \"bytes\": %zu%s}\n",
          name, encoder.name.c_str(), size, size, median, bytes, versus.c_str());
    }
  }
  return 0;
}
