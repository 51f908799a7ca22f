// Synthetic RGB test pictures for the benchmarks and tests: gradients and waves plus Gaussian noise
// of `noise_sigma` levels. Sigma 2.5 is "smooth" (like a photograph: what encoders see in
// production); sigma 60 is "noisy" (what random-weight models produce, the worst case for
// lossless compression). Deterministic: the same arguments give the same pixels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "image/rgb_image.h"

namespace tlcm::bench {

inline constexpr float kSmoothNoise = 2.5f;
inline constexpr float kNoisyNoise = 60.0f;

inline RgbImage SyntheticImage(int width, int height, float noise_sigma) {
  RgbImage image{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, noise_sigma);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        const float v = 128 + 60 * std::sin(x * 0.01f * (c + 1)) * std::cos(y * 0.013f) +
                        40 * std::sin((x + y) * 0.05f) + noise(rng);
        image.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
      }
    }
  }
  return image;
}

}  // namespace tlcm::bench
