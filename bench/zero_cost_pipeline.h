// A pipeline that costs nothing: every step at once, then a copy of one smooth synthetic picture
// per image (made once per size). What the engine and the server cost on their own - queueing,
// events, image encoding, gRPC - shows through it. Torch-free.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "synthetic_image.h"

namespace tlcm::bench {

class ZeroCostPipeline : public engine::Pipeline {
 public:
  explicit ZeroCostPipeline(engine::ModelInfo info) : info_(std::move(info)) {}
  const engine::ModelInfo& info() const override { return info_; }
  absl::StatusOr<engine::StageTimings> Run(const engine::BatchKey& key,
                                           const std::vector<engine::ImageJob>& jobs,
                                           const engine::BatchCallbacks& callbacks) override {
    for (int step = 1; step <= key.steps; ++step) callbacks.on_step(step, key.steps);
    const RgbImage& picture = PictureOf(key.width, key.height);
    for (size_t j = 0; j < jobs.size(); ++j) {
      if (!callbacks.should_drop(j)) callbacks.on_image(j, picture);
    }
    return engine::StageTimings{};
  }

 private:
  const RgbImage& PictureOf(int width, int height) {
    auto [it, added] = pictures_.try_emplace({width, height});
    if (added) it->second = SyntheticImage(width, height, kSmoothNoise);
    return it->second;
  }

  engine::ModelInfo info_;
  std::map<std::pair<int, int>, RgbImage> pictures_;  // used by the one worker running Run
};

// Makes ZeroCostPipelines with the step and size limits of the model spec (any size multiple,
// up to 2048 x 2048 pixels, sampler "lcm").
inline engine::PipelineFactory ZeroCostFactory() {
  return [](const ModelSpec& spec,
            const std::string&) -> absl::StatusOr<std::unique_ptr<engine::Pipeline>> {
    engine::ModelInfo info;
    info.name = spec.name;
    info.family = "zero-cost";
    info.samplers = {"lcm"};
    info.min_steps = spec.min_steps;
    info.max_steps = spec.max_steps;
    info.default_steps = spec.default_steps;
    info.default_width = spec.default_width > 0 ? spec.default_width : 1024;
    info.default_height = spec.default_height > 0 ? spec.default_height : 1024;
    info.size_multiple = 1;
    return std::make_unique<ZeroCostPipeline>(info);
  };
}

}  // namespace tlcm::bench
