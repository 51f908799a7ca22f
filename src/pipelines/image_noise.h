// Per-image random streams (docs/model-notes.md §1): image i of a request owns a CPU
// Mersenne-Twister generator seeded with seed + i - the stream
// torch.Generator("cpu").manual_seed(seed + i) gives in Python. From it come, in order, the initial
// latent and one noise tensor per re-noising step, all float32 on CPU. An image therefore does not
// depend on its batch, its position or the device.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "pipelines/pipeline_options.h"

namespace tlcm {

class ImageNoise {
 public:
  explicit ImageNoise(uint64_t seed) : generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

  // The next standard-normal draw of `shape` (float32, CPU).
  torch::Tensor Draw(at::IntArrayRef shape) {
    return torch::randn(shape, generator_, torch::TensorOptions().dtype(torch::kFloat32));
  }

 private:
  at::Generator generator_;
};

// The streams of a run's images, one per request, addressed by run-level image index.
class BatchNoise {
 public:
  explicit BatchNoise(const std::vector<ImageRequest>& requests) {
    noise_.reserve(requests.size());
    for (const ImageRequest& request : requests) noise_.emplace_back(request.seed);
  }

  // The next draw of `shape` ([1, ...]) of each of `images`, concatenated in that order along
  // dim 0 (float32) and moved to `device`.
  torch::Tensor Draw(const std::vector<size_t>& images, at::IntArrayRef shape,
                     const torch::Device& device) {
    std::vector<torch::Tensor> draws;
    draws.reserve(images.size());
    for (size_t i : images) draws.push_back(noise_[i].Draw(shape));
    return torch::cat(draws).to(device);
  }

 private:
  std::vector<ImageNoise> noise_;
};

}  // namespace tlcm
