// What the StepScheduler tests share: a fixture that queues and schedules by hand, and
// iterations and sample ids as short strings for their expectations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/step_scheduler.h"

namespace tlcm::engine::testing {

// "request:image@step/steps" for every sample an iteration steps.
inline std::vector<std::string> Stepping(const Iteration& it) {
  std::vector<std::string> out;
  for (const ScheduledSample& s : it.stepping) {
    out.push_back(std::to_string(s.id.request_id) + ":" + std::to_string(s.id.image) + "@" +
                  std::to_string(s.step) + "/" + std::to_string(s.steps));
  }
  return out;
}

// "request:image" for every id.
inline std::vector<std::string> Ids(const std::vector<SampleId>& ids) {
  std::vector<std::string> out;
  for (const SampleId& id : ids) {
    out.push_back(std::to_string(id.request_id) + ":" + std::to_string(id.image));
  }
  return out;
}

inline std::vector<std::string> Ids(const std::vector<ScheduledSample>& samples) {
  std::vector<SampleId> ids;
  for (const ScheduledSample& s : samples) ids.push_back(s.id);
  return Ids(ids);
}

// A scheduler driven by hand; the test adds its models and workers.
class SchedulerTest : public ::testing::Test {
 protected:
  void Enqueue(uint64_t id, const SampleShape& shape, int images, absl::Time now) {
    ASSERT_TRUE(scheduler_.Enqueue(id, shape, images, now).ok());
  }
  // Schedules `worker` at `now` (expecting work) and returns the iteration.
  Iteration Next(absl::Time now, int worker = 0) {
    Iteration it;
    EXPECT_TRUE(scheduler_.Schedule(worker, now, &it));
    return it;
  }

  StepScheduler scheduler_;
};

}  // namespace tlcm::engine::testing
