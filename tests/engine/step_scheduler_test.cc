// StepScheduler, stepped by hand: every decision at every step boundary, with hand-picked times.
#include "engine/step_scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/engine/scheduler_test_support.h"

namespace tlcm::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::tlcm::engine::testing::Ids;
using ::tlcm::engine::testing::Stepping;

const absl::Time kT0 = absl::FromUnixSeconds(1'000);
absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

SampleShape Shape(int steps, int width = 64, int height = 64) {
  return SampleShape{BatchKey{"m", steps, width, height, "lcm"}};
}

// Step-level batching (the tests of request-level batching: step_scheduler_request_test.cc).
BatchingOptions Limits(int max_batch_size = 4, int max_queue_size = 64) {
  BatchingOptions batching;
  batching.mode = BatchingMode::kStep;
  batching.max_batch_size = max_batch_size;
  batching.max_queue_size = max_queue_size;
  return batching;
}

class StepSchedulerTest : public testing::SchedulerTest {
 protected:
  void SetUpModel(const BatchingOptions& limits, int workers = 1) {
    scheduler_.AddModel("m", limits);
    for (int w = 0; w < workers; ++w) scheduler_.AddWorker({"m"});
  }
};

TEST_F(StepSchedulerTest, AShortRequestJoinsARunningSetAndLeavesFirst) {
  SetUpModel(Limits());
  Enqueue(1, Shape(8), 1, At(0));
  Iteration it = Next(At(0));
  EXPECT_THAT(Ids(std::vector<SampleId>{it.joined[0].id}), ElementsAre("1:0"));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/8"));
  EXPECT_THAT(scheduler_.Update(it, At(10)).finished, IsEmpty());

  Enqueue(2, Shape(2), 1, At(5));  // another step count: same set
  it = Next(At(10));
  ASSERT_EQ(it.joined.size(), 1u);
  EXPECT_EQ(it.joined[0].id, (SampleId{2, 0}));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@1/8", "2:0@0/2"));
  EXPECT_THAT(scheduler_.Update(it, At(20)).finished, IsEmpty());
  it = Next(At(20));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@2/8", "2:0@1/2"));
  EXPECT_THAT(Ids(scheduler_.Update(it, At(30)).finished), ElementsAre("2:0"));
  EXPECT_EQ(scheduler_.running_samples(0), 1);
  for (int step = 3; step < 8; ++step) {
    it = Next(At(30 + step));
    EXPECT_THAT(Stepping(it), ElementsAre("1:0@" + std::to_string(step) + "/8"));
    StepOutcome outcome = scheduler_.Update(it, At(31 + step));
    EXPECT_EQ(outcome.finished.size(), step == 7 ? 1u : 0u);
  }
  EXPECT_EQ(scheduler_.running_samples(0), 0);
  EXPECT_FALSE(scheduler_.HasWork(0, At(100)));
  EXPECT_FALSE(scheduler_.Schedule(0, At(100), &it));
}

// An image input (img2img, inpainting) skips the start of its schedule: it joins the set at its
// start step, shares the denoiser calls of text-to-image samples and leaves after its own part.
TEST_F(StepSchedulerTest, AnImageInputJoinsAtItsStartStepAndRunsOnlyItsPart) {
  SetUpModel(Limits());
  Enqueue(1, Shape(4), 1, At(0));
  SampleShape image_input = Shape(4);
  image_input.start_step = 2;
  Enqueue(2, image_input, 1, At(0));
  Iteration it = Next(At(0));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/4", "2:0@2/4"));
  EXPECT_THAT(scheduler_.Update(it, At(10)).finished, IsEmpty());
  it = Next(At(10));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@1/4", "2:0@3/4"));
  EXPECT_THAT(Ids(scheduler_.Update(it, At(20)).finished), ElementsAre("2:0"));
  it = Next(At(20));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@2/4"));
}

// Under step-level batching only the model and the size bind: step counts, samplers and image
// inputs share a set (and its denoiser calls).
TEST_F(StepSchedulerTest, OnlyModelAndSizeSeparateSets) {
  SetUpModel(Limits(/*max_batch_size=*/8));
  Enqueue(1, Shape(4), 1, At(0));
  SampleShape sampler = Shape(4);
  sampler.key.sampler = "tlcm";
  Enqueue(2, sampler, 1, At(0));
  SampleShape masked = Shape(4);
  masked.key.strength = 0.5;
  masked.key.masked = true;
  masked.start_step = 2;
  Enqueue(3, masked, 1, At(0));
  Enqueue(4, Shape(4, 128, 64), 1, At(0));  // width: a set of its own
  Iteration it = Next(At(0));
  EXPECT_FALSE(it.request_level);
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/4", "2:0@0/4", "3:0@2/4"));
  scheduler_.Update(it, At(10));
  it = Next(At(10));  // the other width has waited since 0 ms, the set since 10
  EXPECT_EQ(it.width, 128);
  EXPECT_THAT(Stepping(it), ElementsAre("4:0@0/4"));
}

TEST_F(StepSchedulerTest, ASetHoldsAtMostMaxBatchSizeAndRefillsAsSamplesLeave) {
  SetUpModel(Limits(/*max_batch_size=*/3));
  Enqueue(1, Shape(2), 2, At(0));
  Enqueue(2, Shape(4), 3, At(1));  // split: image 0 now, images 1 and 2 when room frees
  Iteration it = Next(At(2));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/2", "1:1@0/2", "2:0@0/4"));
  EXPECT_EQ(scheduler_.queued_requests("m"), 1);
  scheduler_.Update(it, At(3));
  it = Next(At(3));
  EXPECT_TRUE(it.joined.empty());
  EXPECT_THAT(Ids(scheduler_.Update(it, At(4)).finished), ElementsAre("1:0", "1:1"));
  it = Next(At(4));
  EXPECT_THAT(Stepping(it), ElementsAre("2:0@2/4", "2:1@0/4", "2:2@0/4"));
  EXPECT_EQ(scheduler_.queued_requests("m"), 0);
}

TEST_F(StepSchedulerTest, FewerStepsJoinFirstUntilAnOvertakenImageIsDue) {
  SetUpModel(Limits(/*max_batch_size=*/2));
  Enqueue(1, Shape(2), 2, At(0));
  Iteration it = Next(At(0));
  Enqueue(2, Shape(8), 1, At(1));
  Enqueue(3, Shape(4), 1, At(2));
  Enqueue(4, Shape(2), 1, At(3));
  scheduler_.Update(it, At(10));
  it = Next(At(10));  // full: nobody joins
  EXPECT_TRUE(it.joined.empty());
  EXPECT_THAT(Ids(scheduler_.Update(it, At(20)).finished), ElementsAre("1:0", "1:1"));
  it = Next(At(20));  // the 2-step and the 4-step request overtake the 8-step one
  EXPECT_THAT(Stepping(it), ElementsAre("3:0@0/4", "4:0@0/2"));
  Enqueue(5, Shape(2), 1, At(21));
  scheduler_.Update(it, At(30));
  it = Next(At(30));
  EXPECT_THAT(Ids(scheduler_.Update(it, At(40)).finished), ElementsAre("4:0"));
  // Request 2 has been overtaken by two images (max_batch_size): it is due and goes before the
  // shorter request 5.
  it = Next(At(40));
  EXPECT_THAT(Stepping(it), ElementsAre("3:0@2/4", "2:0@0/8"));
  EXPECT_EQ(scheduler_.queued_requests("m"), 1);
}

TEST_F(StepSchedulerTest, SetsOfDifferentSizesOnOneDeviceTakeTurns) {
  SetUpModel(Limits());
  Enqueue(1, Shape(4, 64, 64), 1, At(0));
  Iteration a = Next(At(0));
  Enqueue(2, Shape(4, 32, 48), 1, At(1));
  scheduler_.Update(a, At(10));
  Iteration b = Next(At(10));  // the new size has waited since 1 ms, the running set since 10
  EXPECT_NE(b.set, a.set);
  EXPECT_EQ(b.width, 32);
  EXPECT_EQ(b.height, 48);
  EXPECT_THAT(Stepping(b), ElementsAre("2:0@0/4"));
  scheduler_.Update(b, At(20));
  EXPECT_EQ(Next(At(20)).set, a.set);
}

TEST_F(StepSchedulerTest, RemovedRequestsLeaveTheQueueAtOnceAndTheSetAtTheNextBoundary) {
  SetUpModel(Limits(/*max_batch_size=*/2));
  Enqueue(1, Shape(4), 2, At(0));
  Enqueue(2, Shape(4), 1, At(1));
  Enqueue(3, Shape(4), 1, At(2));
  Iteration it = Next(At(2));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/4", "1:1@0/4"));
  EXPECT_EQ(scheduler_.Remove(2), 1);  // queued
  EXPECT_EQ(scheduler_.queued_requests("m"), 1);
  EXPECT_EQ(scheduler_.Remove(1), 0);  // running: during the step
  StepOutcome outcome = scheduler_.Update(it, At(3));
  EXPECT_THAT(outcome.finished, IsEmpty());
  EXPECT_THAT(Ids(outcome.left), ElementsAre("1:0", "1:1"));
  it = Next(At(3));  // request 3 takes the room
  EXPECT_THAT(Stepping(it), ElementsAre("3:0@0/4"));
  scheduler_.Update(it, At(4));
  scheduler_.Remove(3);  // between two iterations
  it = Next(At(4));
  EXPECT_THAT(Ids(it.left), ElementsAre("3:0"));
  EXPECT_TRUE(it.stepping.empty());
  EXPECT_EQ(scheduler_.running_samples(0), 0);
  EXPECT_EQ(scheduler_.Remove(99), 0);
}

TEST_F(StepSchedulerTest, AFullQueueRefusesAndPositionsCount) {
  SetUpModel(Limits(4, /*max_queue_size=*/2));
  EXPECT_EQ(*scheduler_.Enqueue(1, Shape(2), 1, At(0)), 0);
  EXPECT_EQ(*scheduler_.Enqueue(2, Shape(2), 1, At(0)), 1);
  const absl::StatusOr<int> full = scheduler_.Enqueue(3, Shape(2), 1, At(0));
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.status().message()), ::testing::HasSubstr("\"m\""));
  Next(At(0));  // both join: the queue has room again
  EXPECT_EQ(*scheduler_.Enqueue(3, Shape(2), 1, At(0)), 0);
}

TEST_F(StepSchedulerTest, FailedSetsCloseAndNameTheirRequests) {
  SetUpModel(Limits());
  Enqueue(1, Shape(2), 2, At(0));
  Enqueue(2, Shape(3), 1, At(0));
  Iteration it = Next(At(0));
  EXPECT_THAT(scheduler_.Fail(it), ElementsAre(1u, 2u));
  EXPECT_EQ(scheduler_.running_samples(0), 0);
  EXPECT_THAT(scheduler_.Update(it, At(1)).finished, IsEmpty());  // the set is gone
}

TEST_F(StepSchedulerTest, ASecondDeviceOpensASetOnlyWhenNoSetHasRoom) {
  SetUpModel(Limits(/*max_batch_size=*/1), /*workers=*/2);
  Enqueue(1, Shape(2), 1, At(0));
  Enqueue(2, Shape(2), 1, At(0));
  Iteration first = Next(At(0), 0);
  EXPECT_TRUE(scheduler_.HasWork(1, At(0)));
  Iteration second = Next(At(0), 1);  // worker 0's set is full
  EXPECT_THAT(Stepping(first), ElementsAre("1:0@0/2"));
  EXPECT_THAT(Stepping(second), ElementsAre("2:0@0/2"));
}

}  // namespace
}  // namespace tlcm::engine
