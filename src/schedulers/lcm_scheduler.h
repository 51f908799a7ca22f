// LCMScheduler (diffusers) as TLCM's SDXL path uses it: epsilon prediction, consistency
// boundary scalings, re-noising between steps. Pure functions of (config, step count, index).
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace tlcm {

// Read from the model folder's scheduler/scheduler_config.json (SDXL ships EulerDiscrete's
// config); keys LCM does not find there take LCM's defaults, as LCMScheduler.from_config does.
struct LcmSchedulerConfig {
  int num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  std::string beta_schedule = "scaled_linear";  // also "linear"
  int original_inference_steps = 50;
  double timestep_scaling = 10.0;
  std::string prediction_type = "epsilon";  // the only one TLCM uses

  static absl::StatusOr<LcmSchedulerConfig> FromFile(const std::string& path);
};

// Cumulative alpha products, [num_train_timesteps] float32, computed like diffusers:
// betas = linspace(sqrt(start), sqrt(end), T)^2 (scaled_linear) in float32, cumprod(1 - betas).
torch::Tensor AlphasCumprod(int num_train_timesteps, double beta_start, double beta_end,
                            const std::string& beta_schedule);

// diffusers' add_noise of the DDPM-family schedulers (LCMScheduler's): sqrt(ac[t]) * sample +
// sqrt(1 - ac[t]) * noise, ac = `alphas_cumprod` ([T] float32); float32 result on sample's device.
torch::Tensor AddNoise(const torch::Tensor& alphas_cumprod, const torch::Tensor& sample,
                       const torch::Tensor& noise, int64_t timestep);

class LcmScheduler {
 public:
  explicit LcmScheduler(const LcmSchedulerConfig& config);

  // The N timesteps visited (descending), e.g. N=4: 999 759 499 259 for SDXL's config.
  // Requires 1 <= steps <= original_inference_steps.
  std::vector<int64_t> Timesteps(int steps) const;

  // One step for a batch whose samples may sit at different timesteps.
  //   sample, model_output: [B, ...]; timestep[b]: the sample's current timestep;
  //   next_timestep[b]: the following step's timestep, or -1 when this is the sample's last step;
  //   noise: [B, ...] fresh noise (ignored, may be undefined, when every sample is at its last
  //   step).
  // Returns the next sample (the denoised estimate for samples at their last step). Computed in
  // float32 with diffusers' order of operations; the result is float32.
  torch::Tensor Step(const torch::Tensor& model_output, const std::vector<int64_t>& timestep,
                     const torch::Tensor& sample, const std::vector<int64_t>& next_timestep,
                     const torch::Tensor& noise) const;

  const torch::Tensor& alphas_cumprod() const { return alphas_cumprod_; }
  const LcmSchedulerConfig& config() const { return config_; }

 private:
  LcmSchedulerConfig config_;
  torch::Tensor alphas_cumprod_;  // [T] float32, CPU
};

}  // namespace tlcm
