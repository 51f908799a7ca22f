#include "schedulers/flow_match_tlcm_scheduler.h"

#include <cmath>

#include "loaders/json_config.h"
#include "schedulers/per_sample.h"
#include "util/status_macros.h"

namespace tlcm {

absl::StatusOr<FlowMatchSchedulerConfig> FlowMatchSchedulerConfig::FromFile(
    const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  return ParseConfig(path, json, [](const nlohmann::json& j) {
    FlowMatchSchedulerConfig c;
    c.num_train_timesteps = ValueOr(j, "num_train_timesteps", c.num_train_timesteps);
    c.shift = ValueOr(j, "shift", c.shift);
    c.use_dynamic_shifting = ValueOr(j, "use_dynamic_shifting", c.use_dynamic_shifting);
    c.base_shift = ValueOr(j, "base_shift", c.base_shift);
    c.max_shift = ValueOr(j, "max_shift", c.max_shift);
    c.base_image_seq_len = ValueOr(j, "base_image_seq_len", c.base_image_seq_len);
    c.max_image_seq_len = ValueOr(j, "max_image_seq_len", c.max_image_seq_len);
    if (c.num_train_timesteps < 1) throw std::invalid_argument("num_train_timesteps must be >= 1");
    if (c.max_image_seq_len <= c.base_image_seq_len) {
      throw std::invalid_argument("max_image_seq_len must exceed base_image_seq_len");
    }
    if (ValueOr(j, "use_karras_sigmas", false) || ValueOr(j, "use_exponential_sigmas", false) ||
        ValueOr(j, "use_beta_sigmas", false)) {
      throw std::invalid_argument("karras / exponential / beta sigmas are not supported");
    }
    return c;
  });
}

double FlowMatchTlcmScheduler::Mu(int64_t image_seq_len) const {
  const double m = (config_.max_shift - config_.base_shift) /
                   static_cast<double>(config_.max_image_seq_len - config_.base_image_seq_len);
  const double b = config_.base_shift - m * static_cast<double>(config_.base_image_seq_len);
  return static_cast<double>(image_seq_len) * m + b;
}

std::vector<float> FlowMatchTlcmScheduler::Sigmas(int steps, int64_t image_seq_len) const {
  TORCH_CHECK(steps >= 1, "FlowMatchTlcmScheduler: steps must be >= 1");
  const double mu = Mu(image_seq_len);
  std::vector<float> sigmas;
  const double last = 1.0 / steps;
  for (int i = 0; i < steps; ++i) {
    // numpy.linspace(1, 1/steps, steps): start + i * step, the last point set exactly.
    const double s = steps == 1       ? 1.0
                     : i == steps - 1 ? last
                                      : 1.0 + i * ((last - 1.0) / (steps - 1));
    const double shifted = config_.use_dynamic_shifting
                               ? std::exp(mu) / (std::exp(mu) + (1.0 / s - 1.0))
                               : config_.shift * s / (1.0 + (config_.shift - 1.0) * s);
    sigmas.push_back(static_cast<float>(shifted));
  }
  sigmas.push_back(0.0f);
  return sigmas;
}

float FlowMatchTlcmScheduler::TransformerTimestep(float sigma) const {
  const float t = sigma * static_cast<float>(config_.num_train_timesteps);
  return t / 1000.0f;
}

torch::Tensor FlowMatchTlcmScheduler::Step(const torch::Tensor& velocity,
                                           const std::vector<float>& sigma,
                                           const torch::Tensor& sample,
                                           const std::vector<float>& sigma_next,
                                           const torch::Tensor& noise) const {
  TORCH_CHECK(
      static_cast<int64_t>(sigma.size()) == sample.size(0) && sigma.size() == sigma_next.size(),
      "FlowMatchTlcmScheduler::Step: one sigma and one next sigma per sample");
  std::vector<float> keep(sigma_next.size());
  for (size_t b = 0; b < keep.size(); ++b) keep[b] = 1.0f - sigma_next[b];
  const torch::Tensor x = sample.to(torch::kFloat32);
  const torch::Tensor x0 = x - PerSample(sigma, x) * velocity.to(torch::kFloat32);
  torch::Tensor next = PerSample(keep, x) * x0;
  if (noise.defined()) next = PerSample(sigma_next, x) * noise.to(torch::kFloat32) + next;
  return next;
}

torch::Tensor FlowMatchTlcmScheduler::ScaleNoise(const torch::Tensor& sample,
                                                 const torch::Tensor& noise, float sigma) {
  const torch::Tensor s = torch::tensor(sigma, torch::kFloat32).to(sample.device());
  return s * noise.to(torch::kFloat32) + (1 - s) * sample.to(torch::kFloat32);
}

}  // namespace tlcm
