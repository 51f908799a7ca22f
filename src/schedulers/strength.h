// How image inputs' `strength` shortens a schedule, per model family, as diffusers' image
// pipelines round it (get_timesteps). Header-only and torch-free: the engine checks requests
// with it, the pipelines run with it.
#pragma once

#include <algorithm>
#include <cmath>
#include <string_view>

namespace tlcm {

// The first step (0-based) of `steps` that a run at `strength` in (0, 1] runs; steps - start
// steps run. SDXL's pipelines: start = steps - min(floor(steps * strength), steps). FLUX's:
// start = floor(max(steps - steps * strength, 0)). Products in double, as Python's.
inline int SdxlStartStep(int steps, double strength) {
  const int init = std::min(static_cast<int>(std::floor(steps * strength)), steps);
  return std::max(steps - init, 0);
}

inline int FluxStartStep(int steps, double strength) {
  const double init = std::min(steps * strength, static_cast<double>(steps));
  return static_cast<int>(std::max(steps - init, 0.0));
}

// The rule of `family` ("flux"; anything else is SDXL's).
inline int StartStep(std::string_view family, int steps, double strength) {
  return family == "flux" ? FluxStartStep(steps, strength) : SdxlStartStep(steps, strength);
}

}  // namespace tlcm
