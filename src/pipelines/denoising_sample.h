// One image on its way through a denoising loop, with everything that may differ between the
// samples that share a denoiser call: its own schedule (step count, scheduler, timesteps or
// sigmas), how far along it is, its random stream, its prompt embeddings and its latents. Samples
// of one size at different points of different schedules advance together, one denoiser call
// per step for all of them (step-level batching); a run of one step count is the special case
// where all started together.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "pipelines/image_noise.h"
#include "pipelines/pipeline_options.h"

namespace tlcm {

struct DenoisingSample {
  explicit DenoisingSample(ImageRequest image) : request(std::move(image)), noise(request.seed) {}

  ImageRequest request;   // prompt, seed, guidance
  std::string scheduler;  // resolved: never empty
  int width = 0;          // pixels; samples share a denoiser call only with samples of their size
  int height = 0;
  int steps = 0;                      // denoising steps in all
  int step = 0;                       // steps done; the next one is step + 1
  std::vector<int64_t> timesteps;     // SDXL: the `steps` timesteps visited, descending
  std::vector<float> sigmas;          // FLUX: steps + 1 sigmas, the last one 0
  ImageNoise noise;                   // the image's own stream: initial latent, then re-noising
  std::vector<torch::Tensor> embeds;  // prompt embeddings, each [1, ...] on the device
  torch::Tensor latents;              // [1, ...] float32 on the device (FLUX: packed tokens)
  // Image inputs (image_inputs.h), shaped like `latents`: the input picture's latent and the
  // noise drawn with it; with `mask` (1 = repaint) the sample is inpainted. An image-input sample
  // starts at a later `step`.
  torch::Tensor image_latents;
  torch::Tensor image_noise;
  torch::Tensor mask;
  // A 9-channel inpainting UNet's extra input beside `mask`: the masked input's latent.
  torch::Tensor masked_image_latents;

  bool done() const { return step >= steps; }
};

// The style adapters of each sample of `set`, in row order (LoraBatchBuilder::Build).
inline std::vector<const AdapterSet*> SampleAdapters(const std::vector<DenoisingSample*>& set) {
  std::vector<const AdapterSet*> rows;
  rows.reserve(set.size());
  for (const DenoisingSample* sample : set) rows.push_back(&sample->request.adapters);
  return rows;
}

// Stores row r of `next` ([B, ...], B = set.size()) as set[r]'s latents and counts the step.
inline void AdvanceSamples(const std::vector<DenoisingSample*>& set, const torch::Tensor& next) {
  for (size_t r = 0; r < set.size(); ++r) {
    set[r]->latents = next.narrow(0, static_cast<int64_t>(r), 1);
    ++set[r]->step;
  }
}

}  // namespace tlcm
