// The TLCM authors' FlowMatchEulerTLCMScheduler for FLUX: the flow-matching sigma schedule with
// resolution-dependent shift, and a consistency step that re-noises x0 to the next sigma.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace tlcm {

// From scheduler/scheduler_config.json (FLUX.1-dev: dynamic shifting, 0.5 .. 1.15 over image
// sequence lengths 256 .. 4096).
struct FlowMatchSchedulerConfig {
  int num_train_timesteps = 1000;
  double shift = 1.0;  // used only without dynamic shifting
  bool use_dynamic_shifting = false;
  double base_shift = 0.5;
  double max_shift = 1.15;
  int64_t base_image_seq_len = 256;
  int64_t max_image_seq_len = 4096;

  static absl::StatusOr<FlowMatchSchedulerConfig> FromFile(const std::string& path);
};

class FlowMatchTlcmScheduler {
 public:
  explicit FlowMatchTlcmScheduler(const FlowMatchSchedulerConfig& config) : config_(config) {}

  // mu = image_seq_len * m + b with m, b from the config's shift and sequence-length range.
  double Mu(int64_t image_seq_len) const;

  // steps + 1 sigmas (float32 values, the last one 0): linspace(1, 1/steps, steps) shifted by
  // e^mu / (e^mu + 1/s - 1) (dynamic) or shift*s / (1 + (shift-1)*s), computed in float64 and
  // rounded to float32 as diffusers does. image_seq_len = (H/16) * (W/16) for FLUX.
  std::vector<float> Sigmas(int steps, int64_t image_seq_len) const;

  // The timestep value the transformer receives for `sigma`: float32(float32(sigma * T) / T),
  // the round trip the FLUX pipeline makes (timesteps = sigmas * T, then t / 1000).
  float TransformerTimestep(float sigma) const;

  // Flow matching's forward process at `sigma` (diffusers' scale_noise): sigma * noise +
  // (1 - sigma) * sample, float32.
  static torch::Tensor ScaleNoise(const torch::Tensor& sample, const torch::Tensor& noise,
                                  float sigma);

  // One TLCM step per sample: x0 = x - sigma * v; next = sigma_next * noise + (1 - sigma_next) *
  // x0. sample, velocity, noise: [B, ...]; noise may be undefined when every sigma_next is 0.
  // float32 result.
  torch::Tensor Step(const torch::Tensor& velocity, const std::vector<float>& sigma,
                     const torch::Tensor& sample, const std::vector<float>& sigma_next,
                     const torch::Tensor& noise) const;

 private:
  FlowMatchSchedulerConfig config_;
};

}  // namespace tlcm
