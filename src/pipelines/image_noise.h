// Per-image random streams (docs/model-notes.md §1): image i of a request owns a CPU
// Mersenne-Twister generator seeded with seed + i - the stream
// torch.Generator("cpu").manual_seed(seed + i) gives in Python. From it come, in order, the initial
// latent and one noise tensor per re-noising step, all float32 on CPU. An image therefore does not
// depend on its batch, its position or the device.
#pragma once

#include <cstdint>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

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

}  // namespace tlcm
