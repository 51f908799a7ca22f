// A pipeline's whole-batch Run, made of its step-wise parts: every image of the run starts
// together and advances one step per denoiser call; images the caller drops leave at a step
// boundary and the others go on. The SDXL and FLUX pipelines share it.
#pragma once

#include <functional>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "pipelines/denoising_sample.h"
#include "pipelines/pipeline_options.h"
#include "pipelines/run_timer.h"
#include "util/status_macros.h"

namespace tlcm {

// `Pipeline` provides:
//   absl::Status CheckSettings(const RunSettings&) const;
//   absl::StatusOr<std::vector<DenoisingSample>> StartSamples(requests, settings,
//                                                             engine::StageTimings*);
//   bool Step(const std::vector<DenoisingSample*>& set, const std::function<bool()>& interrupt);
//   RgbImage Preview(const DenoisingSample&) const;
//   std::vector<RgbImage> Decode(const std::vector<const DenoisingSample*>&);
//   const PipelineOptions& options() const;
template <typename Pipeline>
absl::StatusOr<RunResult> RunDenoisingLoop(Pipeline& pipeline,
                                           const std::vector<ImageRequest>& requests,
                                           const RunSettings& settings, const RunHooks& hooks) {
  // 1. Check inputs.
  TLCM_RETURN_IF_ERROR(pipeline.CheckSettings(settings));
  if (requests.empty()) return absl::InvalidArgumentError("a run needs at least one image");
  torch::NoGradGuard no_grad;
  RunResult result;
  result.images.resize(requests.size());
  RunTimer timer(pipeline.options().device);
  const auto dropped = [&](size_t image) { return hooks.should_drop && hooks.should_drop(image); };
  std::vector<size_t> images;  // the run-level index of samples[r]
  std::vector<ImageRequest> wanted;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (dropped(i)) continue;
    images.push_back(i);
    wanted.push_back(requests[i]);
  }
  if (images.empty()) return result;

  // 2. Encode the prompts of the images still wanted; 3. draw their initial latents.
  TLCM_ASSIGN_OR_RETURN(std::vector<DenoisingSample> samples,
                        pipeline.StartSamples(wanted, settings, &result.timings));
  result.timings.text_encode_ms = timer.Lap();

  // 4. Denoise: every image advances one step per denoiser call.
  while (!samples.empty() && !samples.front().done()) {
    std::vector<DenoisingSample*> set;
    for (DenoisingSample& sample : samples) set.push_back(&sample);
    // Stops inside the denoiser once no image of the run is wanted any more.
    const bool stepped = pipeline.Step(set, [&] {
      for (size_t image : images) {
        if (!dropped(image)) return false;
      }
      return true;
    });
    if (!stepped) {  // every image left
      result.timings.denoise_ms = timer.Lap();
      return result;
    }
    const int step = samples.front().step;
    if (hooks.on_step) hooks.on_step(step, settings.steps);
    if (hooks.on_preview && hooks.wants_preview && step < settings.steps) {
      for (size_t r = 0; r < samples.size(); ++r) {
        if (hooks.wants_preview(images[r]))
          hooks.on_preview(images[r], step, pipeline.Preview(samples[r]));
      }
    }
    size_t kept = 0;
    for (size_t r = 0; r < samples.size(); ++r) {
      if (dropped(images[r])) continue;
      if (kept != r) {
        samples[kept] = std::move(samples[r]);
        images[kept] = images[r];
      }
      ++kept;
    }
    samples.erase(samples.begin() + static_cast<std::ptrdiff_t>(kept), samples.end());
    images.resize(kept);
  }
  result.timings.denoise_ms = timer.Lap();
  if (samples.empty()) return result;

  // 5. Decode to 8-bit RGB.
  std::vector<const DenoisingSample*> finished;
  for (const DenoisingSample& sample : samples) finished.push_back(&sample);
  std::vector<RgbImage> decoded = pipeline.Decode(finished);
  for (size_t r = 0; r < decoded.size(); ++r) result.images[images[r]] = std::move(decoded[r]);
  result.timings.decode_ms = timer.Lap();
  return result;
}

}  // namespace tlcm
