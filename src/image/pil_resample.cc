#include "image/pil_resample.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tlcm {
namespace {

// Pillow's fixed point for 8-bit resampling: 32 bits minus 8 for the value and 2 for the sign
// and overshoot.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kLanczosSupport = 3.0;

double Sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}

double Lanczos(double x) {
  if (-kLanczosSupport <= x && x < kLanczosSupport) return Sinc(x) * Sinc(x / kLanczosSupport);
  return 0.0;
}

// The taps of one output pixel: source pixels [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<int32_t> weights;  // fixed point, kPrecisionBits fraction bits
};

// Pillow's precompute_coeffs and normalize_coeffs_8bpc for `in_size` -> `out_size` pixels.
std::vector<Taps> Coefficients(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kLanczosSupport * filter_scale;
  std::vector<Taps> taps(out_size);
  std::vector<double> w;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filter_scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    w.assign(std::max(xmax, 0), 0.0);
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = Lanczos((x + xmin - center + 0.5) * ss);
      total += w[x];
    }
    taps[xx].first = xmin;
    taps[xx].weights.resize(w.size());
    for (size_t x = 0; x < w.size(); ++x) {
      const double k = total != 0.0 ? w[x] / total : w[x];
      const double fixed = k * (1 << kPrecisionBits);
      taps[xx].weights[x] = static_cast<int32_t>(k < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
  }
  return taps;
}

uint8_t Clip8(int64_t sum) {
  if (sum >= (int64_t{1} << kPrecisionBits << 8)) return 255;
  if (sum <= 0) return 0;
  return static_cast<uint8_t>(sum >> kPrecisionBits);
}

// One pass along x (`along_x`) or y; `out` has the other side of `in`.
Plane8 Pass(const Plane8& in, int out_size, bool along_x) {
  const std::vector<Taps> taps = Coefficients(along_x ? in.width : in.height, out_size);
  Plane8 out;
  out.width = along_x ? out_size : in.width;
  out.height = along_x ? in.height : out_size;
  out.channels = in.channels;
  out.bytes.resize(static_cast<size_t>(out.width) * out.height * out.channels);
  const size_t c = in.channels;
  const size_t row = static_cast<size_t>(in.width) * c;
  // Source stride between taps and the source offset of output pixel (x, y) for tap 0.
  const size_t step = along_x ? c : row;
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      const Taps& t = taps[along_x ? x : y];
      const size_t base =
          along_x ? y * row + t.first * c : static_cast<size_t>(t.first) * row + x * c;
      for (size_t ch = 0; ch < c; ++ch) {
        int64_t sum = int64_t{1} << (kPrecisionBits - 1);
        for (size_t k = 0; k < t.weights.size(); ++k) {
          sum += int64_t{in.bytes[base + k * step + ch]} * t.weights[k];
        }
        out.bytes[(static_cast<size_t>(y) * out.width + x) * c + ch] = Clip8(sum);
      }
    }
  }
  return out;
}

}  // namespace

Plane8 ResizeLanczos(const Plane8& image, int width, int height) {
  // Pillow runs the vertical pass first when it shrinks the height by more rows than twice the
  // columns the width loses; the order changes the rounding of the intermediate image.
  const int rows_lost = image.height - height;
  const bool vertical_first = rows_lost > 0 && rows_lost > 2 * (image.width - width);
  Plane8 out = image;
  if (vertical_first && height != out.height) out = Pass(out, height, /*along_x=*/false);
  if (width != out.width) out = Pass(out, width, /*along_x=*/true);
  if (height != out.height) out = Pass(out, height, /*along_x=*/false);
  return out;
}

RgbImage ResizeLanczos(const RgbImage& image, int width, int height) {
  Plane8 resized = ResizeLanczos(Plane8{image.width, image.height, 3, image.pixels}, width, height);
  return RgbImage{resized.width, resized.height, std::move(resized.bytes)};
}

Plane8 ToGrayscale(const RgbImage& image) {
  Plane8 out{image.width, image.height, 1, {}};
  out.bytes.resize(static_cast<size_t>(image.width) * image.height);
  for (size_t i = 0; i < out.bytes.size(); ++i) {
    const uint8_t* p = &image.pixels[3 * i];
    out.bytes[i] = static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
  }
  return out;
}

}  // namespace tlcm
