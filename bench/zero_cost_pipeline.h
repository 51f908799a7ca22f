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

  // Samples only remember their size.
  absl::StatusOr<engine::StageTimings> Start(
      int width, int height, const std::vector<engine::SampleSpec>& samples) override {
    for (const engine::SampleSpec& s : samples)
      sizes_[{s.id.request_id, s.id.image}] = {width, height};
    return engine::StageTimings{};
  }
  absl::StatusOr<engine::StageTimings> Step(const std::vector<engine::SampleId>& /*set*/,
                                            const std::function<bool()>& /*interrupt*/) override {
    return engine::StageTimings{};
  }
  absl::StatusOr<RgbImage> Preview(const engine::SampleId& id) override {
    const auto [width, height] = sizes_.at({id.request_id, id.image});
    return PictureOf(width / 8, height / 8);
  }
  absl::StatusOr<engine::StageTimings> Decode(const std::vector<engine::SampleId>& ids,
                                              std::vector<RgbImage>* images) override {
    for (const engine::SampleId& id : ids) {
      const auto [width, height] = sizes_.at({id.request_id, id.image});
      images->push_back(PictureOf(width, height));
    }
    Release(ids);
    return engine::StageTimings{};
  }
  void Release(const std::vector<engine::SampleId>& ids) override {
    for (const engine::SampleId& id : ids) sizes_.erase({id.request_id, id.image});
  }

 private:
  const RgbImage& PictureOf(int width, int height) {
    auto [it, added] = pictures_.try_emplace({width, height});
    if (added) it->second = SyntheticImage(width, height, kSmoothNoise);
    return it->second;
  }

  engine::ModelInfo info_;
  std::map<std::pair<int, int>, RgbImage> pictures_;  // used by the one worker that steps
  std::map<std::pair<uint64_t, int>, std::pair<int, int>> sizes_;  // started samples' sizes
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
