// The TLCM authors' own SDXL sampler (their inference.py): a fixed grid of timesteps, an
// epsilon-to-x0 step without boundary scalings, and re-noising to the next grid point.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "schedulers/lcm_scheduler.h"

namespace tlcm {

class TlcmTableScheduler {
 public:
  // Uses the beta schedule of `config` (SDXL: scaled_linear 0.00085..0.012 over 1000 steps).
  explicit TlcmTableScheduler(const LcmSchedulerConfig& config);

  static constexpr int kMinSteps = 1;
  static constexpr int kMaxSteps = 8;

  // The timesteps visited for 1..8 steps, picked from the grid 999, 874, ..., 124 as the
  // authors' table does (e.g. 4 steps: 999 749 499 124).
  std::vector<int64_t> Timesteps(int steps) const;

  // One step: x0 = (x - sqrt(1 - ac[t]) eps) / sqrt(ac[t]); samples with a next timestep
  // (next_timestep[b] >= 0) are re-noised to it: sqrt(ac[t']) x0 + sqrt(1 - ac[t']) noise;
  // samples at their last step return x0. Shapes as LcmScheduler::Step; float32 result.
  torch::Tensor Step(const torch::Tensor& model_output, const std::vector<int64_t>& timestep,
                     const torch::Tensor& sample, const std::vector<int64_t>& next_timestep,
                     const torch::Tensor& noise) const;

 private:
  torch::Tensor alphas_cumprod_;  // [T] float32
};

}  // namespace tlcm
