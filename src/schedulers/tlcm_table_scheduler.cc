#include "schedulers/tlcm_table_scheduler.h"

#include <cmath>

#include "schedulers/per_sample.h"

namespace tlcm {

TlcmTableScheduler::TlcmTableScheduler(const LcmSchedulerConfig& config)
    : alphas_cumprod_(AlphasCumprod(config.num_train_timesteps, config.beta_start, config.beta_end,
                                    config.beta_schedule)) {}

std::vector<int64_t> TlcmTableScheduler::Timesteps(int steps) const {
  TORCH_CHECK(steps >= kMinSteps && steps <= kMaxSteps,
              "the TLCM table sampler takes 1..8 steps, got ", steps);
  // Rows of the authors' table, as indices into the grid 999, 874, 749, 624, 499, 374, 249, 124.
  static const std::vector<std::vector<int>> kRows = {
      {0},
      {0, 4},
      {0, 4, 7},
      {0, 2, 4, 7},
      {0, 2, 4, 6, 7},
      {0, 2, 4, 5, 6, 7},
      {0, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
  };
  std::vector<int64_t> out;
  for (int index : kRows[steps - 1]) out.push_back(999 - 125 * index);
  return out;
}

torch::Tensor TlcmTableScheduler::Step(const torch::Tensor& model_output,
                                       const std::vector<int64_t>& timestep,
                                       const torch::Tensor& sample,
                                       const std::vector<int64_t>& next_timestep,
                                       const torch::Tensor& noise) const {
  const int64_t batch = sample.size(0);
  TORCH_CHECK(static_cast<int64_t>(timestep.size()) == batch &&
                  static_cast<int64_t>(next_timestep.size()) == batch,
              "TlcmTableScheduler::Step: one timestep and one next timestep per sample");
  const float* ac = alphas_cumprod_.data_ptr<float>();
  std::vector<float> sqrt_alpha(batch), sqrt_beta(batch), next_sqrt_alpha(batch),
      next_sqrt_beta(batch);
  for (int64_t b = 0; b < batch; ++b) {
    sqrt_alpha[b] = std::sqrt(ac[timestep[b]]);
    sqrt_beta[b] = std::sqrt(1.0f - ac[timestep[b]]);
    const bool last = next_timestep[b] < 0;
    next_sqrt_alpha[b] = last ? 1.0f : std::sqrt(ac[next_timestep[b]]);
    next_sqrt_beta[b] = last ? 0.0f : std::sqrt(1.0f - ac[next_timestep[b]]);
  }
  const torch::Tensor x = sample.to(torch::kFloat32);
  const torch::Tensor x0 =
      (x - PerSample(sqrt_beta, x) * model_output.to(torch::kFloat32)) / PerSample(sqrt_alpha, x);
  torch::Tensor next = PerSample(next_sqrt_alpha, x) * x0;
  if (noise.defined()) next = next + PerSample(next_sqrt_beta, x) * noise.to(torch::kFloat32);
  return next;
}

}  // namespace tlcm
