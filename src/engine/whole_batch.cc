#include "engine/whole_batch.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "schedulers/strength.h"

namespace tlcm::engine {

absl::StatusOr<WholeBatch> RunWholeBatch(Pipeline& pipeline, const BatchKey& key,
                                         const std::vector<ImageJob>& jobs,
                                         const WholeBatchHooks& hooks) {
  const int start_step =
      key.strength > 0 ? StartStep(pipeline.info().family, key.steps, key.strength) : 0;
  std::vector<SampleSpec> samples;
  std::vector<SampleId> ids;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const SampleId id{0, static_cast<int>(i)};
    samples.push_back(SampleSpec{id, jobs[i], key.steps, key.sampler, key.strength});
    ids.push_back(id);
  }
  WholeBatch batch;
  absl::StatusOr<StageTimings> started = pipeline.Start(key.width, key.height, samples);
  if (!started.ok()) return started.status();
  batch.timings += *started;
  const std::function<bool()> never = [] { return false; };
  for (int step = start_step + 1; step <= key.steps; ++step) {
    absl::StatusOr<StageTimings> stepped =
        pipeline.Step(ids, hooks.interrupt ? hooks.interrupt : never);
    if (!stepped.ok()) {
      pipeline.Release(ids);
      return stepped.status();
    }
    batch.timings += *stepped;
    if (hooks.on_step) hooks.on_step(step, key.steps);
  }
  absl::StatusOr<StageTimings> decoded = pipeline.Decode(ids, &batch.images);
  if (!decoded.ok()) return decoded.status();
  batch.timings += *decoded;
  if (batch.images.size() != jobs.size()) {
    return absl::InternalError(absl::StrCat("the pipeline decoded ", batch.images.size(), " of ",
                                            jobs.size(), " samples"));
  }
  return batch;
}

}  // namespace tlcm::engine
