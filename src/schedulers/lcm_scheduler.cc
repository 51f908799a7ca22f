#include "schedulers/lcm_scheduler.h"

#include <cmath>

#include "loaders/json_config.h"
#include "schedulers/per_sample.h"
#include "util/status_macros.h"

namespace tlcm {

absl::StatusOr<LcmSchedulerConfig> LcmSchedulerConfig::FromFile(const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  return ParseConfig(path, json, [](const nlohmann::json& j) {
    LcmSchedulerConfig c;
    c.num_train_timesteps = ValueOr(j, "num_train_timesteps", c.num_train_timesteps);
    c.beta_start = ValueOr(j, "beta_start", c.beta_start);
    c.beta_end = ValueOr(j, "beta_end", c.beta_end);
    c.beta_schedule = ValueOr(j, "beta_schedule", c.beta_schedule);
    c.original_inference_steps = ValueOr(j, "original_inference_steps", c.original_inference_steps);
    c.timestep_scaling = ValueOr(j, "timestep_scaling", c.timestep_scaling);
    c.prediction_type = ValueOr(j, "prediction_type", c.prediction_type);
    if (c.beta_schedule != "scaled_linear" && c.beta_schedule != "linear") {
      throw std::invalid_argument("beta_schedule '" + c.beta_schedule +
                                  "' is not supported (scaled_linear or linear)");
    }
    if (c.prediction_type != "epsilon") {
      throw std::invalid_argument("prediction_type '" + c.prediction_type +
                                  "' is not supported (TLCM SDXL predicts epsilon)");
    }
    if (c.num_train_timesteps < 1 || c.original_inference_steps < 1 ||
        c.original_inference_steps > c.num_train_timesteps) {
      throw std::invalid_argument("num_train_timesteps / original_inference_steps out of range");
    }
    return c;
  });
}

torch::Tensor AlphasCumprod(int num_train_timesteps, double beta_start, double beta_end,
                            const std::string& beta_schedule) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor betas =
      beta_schedule == "linear"
          ? torch::linspace(beta_start, beta_end, num_train_timesteps, f32)
          : torch::linspace(std::sqrt(beta_start), std::sqrt(beta_end), num_train_timesteps, f32)
                .pow(2);
  return torch::cumprod(1.0 - betas, 0);
}

LcmScheduler::LcmScheduler(const LcmSchedulerConfig& config)
    : config_(config),
      alphas_cumprod_(AlphasCumprod(config.num_train_timesteps, config.beta_start, config.beta_end,
                                    config.beta_schedule)) {}

std::vector<int64_t> LcmScheduler::Timesteps(int steps) const {
  TORCH_CHECK(steps >= 1 && steps <= config_.original_inference_steps,
              "LCM step count must be in [1, ", config_.original_inference_steps, "], got ", steps);
  // The "origin" schedule of original_inference_steps timesteps, k - 1, 2k - 1, ..., reversed,
  // then `steps` of them picked at floor(linspace(0, origin, steps, endpoint=False)).
  const int origin = config_.original_inference_steps;
  const int k = config_.num_train_timesteps / origin;
  std::vector<int64_t> reversed;
  for (int i = origin; i >= 1; --i) reversed.push_back(static_cast<int64_t>(i) * k - 1);
  std::vector<int64_t> out;
  for (int i = 0; i < steps; ++i) {
    // numpy: linspace(0, origin, steps, endpoint=False)[i] = i * (origin / steps), floored.
    const double position = static_cast<double>(i) * (static_cast<double>(origin) / steps);
    out.push_back(reversed[static_cast<size_t>(std::floor(position))]);
  }
  return out;
}

torch::Tensor LcmScheduler::Step(const torch::Tensor& model_output,
                                 const std::vector<int64_t>& timestep, const torch::Tensor& sample,
                                 const std::vector<int64_t>& next_timestep,
                                 const torch::Tensor& noise) const {
  const int64_t batch = sample.size(0);
  TORCH_CHECK(static_cast<int64_t>(timestep.size()) == batch &&
                  static_cast<int64_t>(next_timestep.size()) == batch,
              "LcmScheduler::Step: one timestep and one next timestep per sample");
  // Per-sample float32 scalars, each computed as diffusers computes them.
  std::vector<float> sqrt_alpha(batch), sqrt_beta(batch), c_skip(batch), c_out(batch),
      next_sqrt_alpha(batch), next_sqrt_beta(batch), keep_noise(batch);
  const float* ac = alphas_cumprod_.data_ptr<float>();
  for (int64_t b = 0; b < batch; ++b) {
    const float alpha = ac[timestep[b]];
    sqrt_alpha[b] = std::sqrt(alpha);
    sqrt_beta[b] = std::sqrt(1.0f - alpha);
    // Boundary-condition scalings: sigma_data 0.5, scaled t = t * timestep_scaling (float32).
    const float scaled =
        static_cast<float>(timestep[b]) * static_cast<float>(config_.timestep_scaling);
    c_skip[b] = 0.25f / (scaled * scaled + 0.25f);
    c_out[b] = scaled / std::sqrt(scaled * scaled + 0.25f);
    const bool last = next_timestep[b] < 0;
    const float next_alpha = last ? 1.0f : ac[next_timestep[b]];
    next_sqrt_alpha[b] = std::sqrt(next_alpha);
    next_sqrt_beta[b] = last ? 0.0f : std::sqrt(1.0f - next_alpha);
    keep_noise[b] = last ? 0.0f : 1.0f;
  }
  const torch::Tensor x = sample.to(torch::kFloat32);
  const torch::Tensor eps = model_output.to(torch::kFloat32);
  const auto column = [&](const std::vector<float>& v) { return PerSample(v, x); };
  const torch::Tensor x0 = (x - column(sqrt_beta) * eps) / column(sqrt_alpha);
  const torch::Tensor denoised = column(c_out) * x0 + column(c_skip) * x;
  torch::Tensor next = column(next_sqrt_alpha) * denoised;
  if (noise.defined()) {
    next = next + column(next_sqrt_beta) * noise.to(torch::kFloat32) * column(keep_noise);
  }
  return next;
}

torch::Tensor AddNoise(const torch::Tensor& alphas_cumprod, const torch::Tensor& sample,
                       const torch::Tensor& noise, int64_t timestep) {
  const torch::Tensor ac = alphas_cumprod[timestep].to(sample.device());
  return ac.pow(0.5) * sample.to(torch::kFloat32) + (1 - ac).pow(0.5) * noise.to(torch::kFloat32);
}

}  // namespace tlcm
