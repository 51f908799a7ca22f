// StepScheduler under request-level batching, stepped by hand with hand-picked times (no
// threads): key separation, max batch size, queue delay, drain, oldest first across keys,
// splitting of large requests, queue limits and positions, removal, eligibility, and a running
// set keeping its worker until it closes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/step_scheduler.h"
#include "tests/engine/scheduler_test_support.h"

namespace tlcm::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::tlcm::engine::testing::Ids;
using ::tlcm::engine::testing::Stepping;

const absl::Time kT0 = absl::FromUnixSeconds(1'000);
const absl::Duration kDelay = absl::Milliseconds(10);
absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

SampleShape Shape(const std::string& model = "m", int steps = 2, int width = 64, int height = 64,
                  const std::string& sampler = "lcm") {
  return SampleShape{BatchKey{model, steps, width, height, sampler}};
}

// An image input: `strength` of a `steps`-step schedule, starting at `start_step`.
SampleShape ImageInput(int steps, double strength, int start_step, bool masked = false) {
  SampleShape shape = Shape("m", steps);
  shape.key.strength = strength;
  shape.key.masked = masked;
  shape.start_step = start_step;
  return shape;
}

BatchingOptions RequestLevel(int max_batch_size, int max_queue_size = 8) {
  BatchingOptions batching;
  batching.mode = BatchingMode::kRequest;
  batching.max_batch_size = max_batch_size;
  batching.max_queue_delay_micros = absl::ToInt64Microseconds(kDelay);
  batching.max_queue_size = max_queue_size;
  return batching;
}

// "m" request-level (4 images a set), "s" step-level.
void AddRequestAndStepLevelModels(StepScheduler& scheduler) {
  scheduler.AddModel("m", RequestLevel(4));
  BatchingOptions step_level;
  step_level.mode = BatchingMode::kStep;
  scheduler.AddModel("s", step_level);
}

class StepSchedulerRequestTest : public testing::SchedulerTest {
 protected:
  // "m": 4 images a set; "other": 2. Both wait kDelay to fill and queue at most 8 requests.
  // Worker 0 runs both.
  void SetUp() override {
    scheduler_.AddModel("m", RequestLevel(4));
    scheduler_.AddModel("other", RequestLevel(2));
    scheduler_.AddWorker({"m", "other"});
  }
  // Opens a set on `worker` at `now` and runs it to its end, checking that it is request-level,
  // takes no joiners after its first step, keeps the worker and that its samples finish
  // together when the set closes. Returns the samples it opened with ("request:image"); empty
  // when the worker had nothing to do.
  std::vector<std::string> RunSet(absl::Time now, int worker = 0) {
    Iteration it;
    if (!scheduler_.Schedule(worker, now, &it)) return {};
    EXPECT_TRUE(it.request_level);
    EXPECT_THAT(it.left, IsEmpty());
    const std::vector<std::string> opened = Ids(it.joined);
    EXPECT_EQ(Ids(it.stepping), opened);
    const uint64_t set = it.set;
    for (int iterations = 1;; ++iterations) {
      const StepOutcome outcome = scheduler_.Update(it, now);
      EXPECT_THAT(outcome.left, IsEmpty());
      if (outcome.closed) {
        EXPECT_EQ(Ids(outcome.finished), opened);  // together, at the last step
        break;
      }
      EXPECT_THAT(outcome.finished, IsEmpty());
      if (iterations > 100) {
        ADD_FAILURE() << "set " << set << " did not close";
        break;
      }
      it = Next(now, worker);
      EXPECT_EQ(it.set, set);
      EXPECT_THAT(it.joined, IsEmpty());
      EXPECT_EQ(Ids(it.stepping), opened);
    }
    EXPECT_EQ(scheduler_.running_samples(worker), 0);
    return opened;
  }
};

TEST_F(StepSchedulerRequestTest, RequestsWithDifferentKeysNeverShareASet) {
  Enqueue(1, Shape(), 1, kT0);
  Enqueue(2, Shape("m", 3), 1, kT0);                           // steps
  Enqueue(3, Shape("m", 2, 128), 1, kT0);                      // width
  Enqueue(4, Shape("m", 2, 64, 128), 1, kT0);                  // height
  Enqueue(5, Shape("m", 2, 64, 64, "tlcm"), 1, kT0);           // sampler
  Enqueue(6, ImageInput(2, 0.5, 1), 1, kT0);                   // strength
  Enqueue(7, ImageInput(2, 0.5, 1, /*masked=*/true), 1, kT0);  // mask
  Enqueue(8, Shape("other"), 1, kT0);                          // model
  Enqueue(9, Shape(), 1, kT0);                                 // same key as 1
  std::vector<std::vector<std::string>> sets;
  for (auto set = RunSet(kT0 + kDelay); !set.empty(); set = RunSet(kT0 + kDelay)) {
    sets.push_back(set);
  }
  EXPECT_THAT(sets, ElementsAre(ElementsAre("1:0", "9:0"), ElementsAre("2:0"), ElementsAre("3:0"),
                                ElementsAre("4:0"), ElementsAre("5:0"), ElementsAre("6:0"),
                                ElementsAre("7:0"), ElementsAre("8:0")));
  EXPECT_EQ(scheduler_.queued_requests("m"), 0);
  EXPECT_EQ(scheduler_.queued_requests("other"), 0);
  EXPECT_FALSE(scheduler_.HasWork(0, kT0 + kDelay));
}

// An image input's set runs only its part of the schedule; its samples finish together.
TEST_F(StepSchedulerRequestTest, AnImageInputSetRunsOnlyItsPartAndFinishesTogether) {
  Enqueue(1, ImageInput(4, 0.5, 2), 3, kT0);
  Enqueue(2, ImageInput(4, 0.5, 2), 1, kT0);
  Iteration it = Next(kT0);  // full
  EXPECT_TRUE(it.request_level);
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@2/4", "1:1@2/4", "1:2@2/4", "2:0@2/4"));
  StepOutcome outcome = scheduler_.Update(it, At(1));
  EXPECT_THAT(outcome.finished, IsEmpty());
  EXPECT_FALSE(outcome.closed);
  it = Next(At(1));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@3/4", "1:1@3/4", "1:2@3/4", "2:0@3/4"));
  outcome = scheduler_.Update(it, At(2));
  EXPECT_THAT(Ids(outcome.finished), ElementsAre("1:0", "1:1", "1:2", "2:0"));
  EXPECT_TRUE(outcome.closed);
  EXPECT_FALSE(scheduler_.Schedule(0, At(2), &it));
}

TEST_F(StepSchedulerRequestTest, AFullSetIsReadyAtOnceAndTheRestWaits) {
  for (uint64_t id = 1; id <= 5; ++id) Enqueue(id, Shape(), 1, kT0);
  EXPECT_EQ(scheduler_.NextReadyTime(0), absl::InfinitePast());
  EXPECT_THAT(RunSet(kT0), ElementsAre("1:0", "2:0", "3:0", "4:0"));
  Iteration it;
  EXPECT_FALSE(scheduler_.HasWork(0, kT0));  // request 5 waits for its delay
  EXPECT_FALSE(scheduler_.Schedule(0, kT0, &it));
  EXPECT_EQ(scheduler_.NextReadyTime(0), kT0 + kDelay);
  EXPECT_EQ(scheduler_.queued_requests("m"), 1);
}

TEST_F(StepSchedulerRequestTest, APartialSetIsReadyExactlyAfterTheQueueDelay) {
  Enqueue(1, Shape(), 1, kT0);
  Enqueue(2, Shape(), 1, At(4));
  EXPECT_EQ(scheduler_.NextReadyTime(0), kT0 + kDelay);  // from the first arrival
  const absl::Time just_before = kT0 + kDelay - absl::Microseconds(1);
  EXPECT_FALSE(scheduler_.HasWork(0, just_before));
  Iteration it;
  EXPECT_FALSE(scheduler_.Schedule(0, just_before, &it));
  EXPECT_TRUE(scheduler_.HasWork(0, kT0 + kDelay));
  EXPECT_THAT(RunSet(kT0 + kDelay), ElementsAre("1:0", "2:0"));
  EXPECT_EQ(scheduler_.NextReadyTime(0), absl::InfiniteFuture());
}

TEST_F(StepSchedulerRequestTest, StopWaitingToFillMakesPartialSetsReady) {
  Enqueue(1, Shape(), 1, kT0);
  Enqueue(2, Shape("other"), 1, kT0);
  EXPECT_EQ(scheduler_.NextReadyTime(0), kT0 + kDelay);
  EXPECT_FALSE(scheduler_.HasWork(0, kT0));
  scheduler_.StopWaitingToFill();
  EXPECT_EQ(scheduler_.NextReadyTime(0), absl::InfinitePast());
  EXPECT_TRUE(scheduler_.HasWork(0, kT0));
  EXPECT_THAT(RunSet(kT0), ElementsAre("1:0"));
  EXPECT_THAT(RunSet(kT0), ElementsAre("2:0"));
  EXPECT_THAT(RunSet(kT0), IsEmpty());
}

TEST_F(StepSchedulerRequestTest, ARequestsImagesCountTowardTheSetAndItStaysWhole) {
  Enqueue(1, Shape(), 3, kT0);
  Enqueue(2, Shape(), 2, kT0);  // does not fit next to request 1: the next set
  // Request 1's set is closed by request 2, hence ready without waiting.
  EXPECT_THAT(RunSet(kT0), ElementsAre("1:0", "1:1", "1:2"));
  EXPECT_THAT(RunSet(kT0), IsEmpty());
  Enqueue(3, Shape(), 2, kT0);  // fills request 2's set
  EXPECT_THAT(RunSet(kT0), ElementsAre("2:0", "2:1", "3:0", "3:1"));
}

TEST_F(StepSchedulerRequestTest, ALargeRequestIsSplitAndKeepsItsImageIndices) {
  Enqueue(1, Shape(), 1, kT0);
  const absl::StatusOr<int> position = scheduler_.Enqueue(2, Shape(), 10, kT0);
  ASSERT_TRUE(position.ok());
  EXPECT_EQ(*position, 1);
  EXPECT_EQ(scheduler_.queued_requests("m"), 2);
  EXPECT_THAT(RunSet(kT0), ElementsAre("1:0", "2:0", "2:1", "2:2"));
  EXPECT_THAT(RunSet(kT0), ElementsAre("2:3", "2:4", "2:5", "2:6"));
  EXPECT_THAT(RunSet(kT0), IsEmpty());            // the last 3 images wait for company or the delay
  EXPECT_EQ(scheduler_.queued_requests("m"), 1);  // request 2 still has images queued
  EXPECT_EQ(scheduler_.NextReadyTime(0), kT0 + kDelay);
  EXPECT_THAT(RunSet(kT0 + kDelay), ElementsAre("2:7", "2:8", "2:9"));
  EXPECT_EQ(scheduler_.queued_requests("m"), 0);
}

TEST_F(StepSchedulerRequestTest, TheSetsOfASplitRequestRunOnTwoWorkersAtOnce) {
  scheduler_.AddWorker({"m"});
  Enqueue(1, Shape(), 8, kT0);
  const Iteration first = Next(kT0, 0);
  EXPECT_TRUE(scheduler_.HasWork(1, kT0));
  const Iteration second = Next(kT0, 1);
  EXPECT_THAT(Stepping(first), ElementsAre("1:0@0/2", "1:1@0/2", "1:2@0/2", "1:3@0/2"));
  EXPECT_THAT(Stepping(second), ElementsAre("1:4@0/2", "1:5@0/2", "1:6@0/2", "1:7@0/2"));
  EXPECT_NE(first.set, second.set);
  EXPECT_EQ(scheduler_.queued_requests("m"), 0);
}

TEST_F(StepSchedulerRequestTest, TheOldestReadySetGoesFirstSoNoKeyStarves) {
  // Key B (3 steps) has one lonely request; key A keeps producing full sets.
  Enqueue(100, Shape("m", 3), 1, kT0);
  uint64_t id = 1;
  std::vector<std::vector<std::string>> sets;
  for (int round = 0; round < 6; ++round) {
    const absl::Time now = At(3 * round);
    for (int i = 0; i < 4; ++i) Enqueue(id++, Shape(), 1, now);
    sets.push_back(RunSet(now));
  }
  // Rounds at 0, 3, 6, 9 ms serve key A; at 12 ms key B's set (since 0) has waited 10 ms and
  // is the oldest ready one, ahead of A's full set; at 15 ms A's set of 12 ms goes.
  EXPECT_THAT(sets, ElementsAre(ElementsAre("1:0", "2:0", "3:0", "4:0"),
                                ElementsAre("5:0", "6:0", "7:0", "8:0"),
                                ElementsAre("9:0", "10:0", "11:0", "12:0"),
                                ElementsAre("13:0", "14:0", "15:0", "16:0"), ElementsAre("100:0"),
                                ElementsAre("17:0", "18:0", "19:0", "20:0")));
  EXPECT_EQ(scheduler_.queued_requests("m"), 4);
}

TEST_F(StepSchedulerRequestTest, AFullQueueRefusesRequestsOfThatModelOnly) {
  StepScheduler scheduler;
  scheduler.AddModel("m", RequestLevel(1, /*max_queue_size=*/2));
  scheduler.AddModel("other", RequestLevel(1, 2));
  scheduler.AddWorker({"m", "other"});
  ASSERT_TRUE(scheduler.Enqueue(1, Shape(), 1, kT0).ok());
  ASSERT_TRUE(scheduler.Enqueue(2, Shape(), 3, kT0).ok());  // a split request counts once
  const absl::StatusOr<int> refused = scheduler.Enqueue(3, Shape(), 1, kT0);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("\"m\""));
  EXPECT_THAT(refused.status().message(), HasSubstr("queue is full"));
  EXPECT_TRUE(scheduler.Enqueue(4, Shape("other"), 1, kT0).ok());
  Iteration it;
  ASSERT_TRUE(scheduler.Schedule(0, kT0, &it));  // request 1 leaves the queue
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/2"));
  const absl::StatusOr<int> admitted = scheduler.Enqueue(5, Shape(), 1, kT0);
  ASSERT_TRUE(admitted.ok());
  EXPECT_EQ(*admitted, 1);  // behind request 2's remaining images
}

TEST_F(StepSchedulerRequestTest, PositionCountsRequestsOfTheSameModelAhead) {
  EXPECT_EQ(*scheduler_.Enqueue(1, Shape(), 1, kT0), 0);
  EXPECT_EQ(*scheduler_.Enqueue(2, Shape("m", 3), 1, kT0), 1);
  EXPECT_EQ(*scheduler_.Enqueue(3, Shape("other"), 1, kT0), 0);
  EXPECT_EQ(*scheduler_.Enqueue(4, Shape(), 1, kT0), 2);
}

TEST_F(StepSchedulerRequestTest, RemoveDropsEveryQueuedImageOfARequest) {
  Enqueue(1, Shape(), 1, kT0);
  Enqueue(2, Shape(), 6, kT0);
  Enqueue(3, Shape(), 1, kT0);
  EXPECT_EQ(scheduler_.Remove(2), 6);
  EXPECT_EQ(scheduler_.Remove(2), 0);
  EXPECT_EQ(scheduler_.Remove(99), 0);
  EXPECT_EQ(scheduler_.queued_requests("m"), 2);
  // Without request 2 the set of requests 1 and 3 is neither full nor closed: it waits.
  EXPECT_EQ(scheduler_.NextReadyTime(0), kT0 + kDelay);
  EXPECT_THAT(RunSet(kT0), IsEmpty());
  EXPECT_THAT(RunSet(kT0 + kDelay), ElementsAre("1:0", "3:0"));
  EXPECT_EQ(scheduler_.queued_requests("m"), 0);
  EXPECT_EQ(*scheduler_.Enqueue(4, Shape(), 1, kT0), 0);
}

TEST_F(StepSchedulerRequestTest, RemovedRunningSamplesLeaveAtTheNextBoundary) {
  Enqueue(1, Shape("m", 3), 2, kT0);
  Enqueue(2, Shape("m", 3), 2, kT0);
  Iteration it = Next(kT0);
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/3", "1:1@0/3", "2:0@0/3", "2:1@0/3"));
  EXPECT_EQ(scheduler_.Remove(1), 0);  // during the step
  StepOutcome outcome = scheduler_.Update(it, At(1));
  EXPECT_THAT(Ids(outcome.left), ElementsAre("1:0", "1:1"));
  EXPECT_THAT(outcome.finished, IsEmpty());
  EXPECT_FALSE(outcome.closed);
  it = Next(At(1));
  EXPECT_THAT(it.left, IsEmpty());
  EXPECT_THAT(Stepping(it), ElementsAre("2:0@1/3", "2:1@1/3"));
  scheduler_.Update(it, At(2));
  Enqueue(3, Shape("other"), 2, At(2));  // full: ready, waits for the worker
  scheduler_.Remove(2);                  // between two iterations: the set empties and closes
  it = Next(At(2));
  EXPECT_THAT(Ids(it.left), ElementsAre("2:0", "2:1"));
  EXPECT_THAT(it.stepping, IsEmpty());
  EXPECT_EQ(scheduler_.running_samples(0), 0);
  EXPECT_THAT(RunSet(At(2)), ElementsAre("3:0", "3:1"));
}

TEST_F(StepSchedulerRequestTest, AWorkerOpensOnlySetsOfModelsItHolds) {
  StepScheduler scheduler;
  scheduler.AddModel("m", RequestLevel(4));
  scheduler.AddModel("other", RequestLevel(2));
  scheduler.AddWorker({"m"});
  scheduler.AddWorker({"other"});
  scheduler.AddWorker({});
  ASSERT_TRUE(scheduler.Enqueue(1, Shape("other"), 2, kT0).ok());
  ASSERT_TRUE(scheduler.Enqueue(2, Shape("m"), 4, At(1)).ok());
  EXPECT_EQ(scheduler.NextReadyTime(0), absl::InfinitePast());
  Iteration it;
  ASSERT_TRUE(scheduler.Schedule(0, At(1), &it));  // "m" although "other" is older
  EXPECT_EQ(it.model, "m");
  EXPECT_THAT(Stepping(it), ElementsAre("2:0@0/2", "2:1@0/2", "2:2@0/2", "2:3@0/2"));
  scheduler.StopWaitingToFill();
  EXPECT_FALSE(scheduler.HasWork(2, At(1)));
  EXPECT_FALSE(scheduler.Schedule(2, At(1), &it));
  EXPECT_EQ(scheduler.NextReadyTime(2), absl::InfiniteFuture());
  ASSERT_TRUE(scheduler.Schedule(1, At(1), &it));
  EXPECT_EQ(it.model, "other");
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/2", "1:1@0/2"));
}

// Nothing joins a running set after its first step (not even images of its key that would
// fit), and it keeps its worker until it closes: a ready set of another key waits.
TEST_F(StepSchedulerRequestTest, ARunningSetTakesNoJoinersAndKeepsItsWorkerUntilItCloses) {
  Enqueue(1, Shape(), 2, kT0);
  Iteration it = Next(kT0 + kDelay);
  EXPECT_TRUE(it.request_level);
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/2", "1:1@0/2"));
  Enqueue(3, Shape("m", 3), 4, At(10));  // another key, full: ready at once
  Enqueue(2, Shape(), 1, At(11));        // same key, room for it: ready at 21 ms
  EXPECT_FALSE(scheduler_.Update(it, At(20)).closed);
  it = Next(At(20));
  EXPECT_THAT(it.joined, IsEmpty());
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@1/2", "1:1@1/2"));
  const StepOutcome outcome = scheduler_.Update(it, At(20));
  EXPECT_THAT(Ids(outcome.finished), ElementsAre("1:0", "1:1"));
  EXPECT_TRUE(outcome.closed);
  // Then the next ready set runs: request 3's (request 2's set is ready only at 21 ms).
  EXPECT_THAT(RunSet(At(20)), ElementsAre("3:0", "3:1", "3:2", "3:3"));
  EXPECT_THAT(RunSet(At(20)), IsEmpty());
  EXPECT_THAT(RunSet(At(21)), ElementsAre("2:0"));
}

// A step-level set of another model on the same worker waits while a request-level set runs,
// and takes its turn again when that set closes.
TEST_F(StepSchedulerRequestTest, AStepLevelSetOnTheSameWorkerWaitsForARequestLevelSet) {
  StepScheduler scheduler;
  AddRequestAndStepLevelModels(scheduler);
  scheduler.AddWorker({"m", "s"});
  ASSERT_TRUE(scheduler.Enqueue(1, Shape("s", 4), 1, kT0).ok());
  Iteration it;
  ASSERT_TRUE(scheduler.Schedule(0, kT0, &it));
  EXPECT_FALSE(it.request_level);
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/4"));
  const uint64_t step_set = it.set;
  ASSERT_TRUE(scheduler.Enqueue(2, Shape("m"), 4, At(5)).ok());  // full: ready at once
  scheduler.Update(it, At(10));
  ASSERT_TRUE(scheduler.Schedule(0, At(10), &it));  // waited since 5 ms, the step set since 10
  EXPECT_TRUE(it.request_level);
  EXPECT_THAT(Stepping(it), ElementsAre("2:0@0/2", "2:1@0/2", "2:2@0/2", "2:3@0/2"));
  ASSERT_TRUE(scheduler.Enqueue(3, Shape("s", 4), 1, At(11)).ok());
  EXPECT_FALSE(scheduler.Update(it, At(20)).closed);
  ASSERT_TRUE(scheduler.Schedule(0, At(20), &it));  // the step set's turn is older, yet it waits
  EXPECT_TRUE(it.request_level);
  EXPECT_THAT(it.joined, IsEmpty());
  EXPECT_THAT(Stepping(it), ElementsAre("2:0@1/2", "2:1@1/2", "2:2@1/2", "2:3@1/2"));
  const StepOutcome outcome = scheduler.Update(it, At(30));
  EXPECT_THAT(Ids(outcome.finished), ElementsAre("2:0", "2:1", "2:2", "2:3"));
  EXPECT_TRUE(outcome.closed);
  ASSERT_TRUE(scheduler.Schedule(0, At(30), &it));
  EXPECT_EQ(it.set, step_set);
  EXPECT_FALSE(it.request_level);
  EXPECT_THAT(Ids(it.joined), ElementsAre("3:0"));
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@1/4", "3:0@0/4"));
}

TEST_F(StepSchedulerRequestTest, AStepLevelSetPausedBehindARequestLevelSetLetsAnotherWorkerOpen) {
  StepScheduler scheduler;
  AddRequestAndStepLevelModels(scheduler);
  scheduler.AddWorker({"m", "s"});
  scheduler.AddWorker({"s"});
  ASSERT_TRUE(scheduler.Enqueue(1, Shape("s", 4), 1, kT0).ok());
  Iteration it;
  ASSERT_TRUE(scheduler.Schedule(0, kT0, &it));  // worker 0 opens the step-level set of "s"
  ASSERT_TRUE(scheduler.Enqueue(2, Shape("m"), 4, At(5)).ok());
  scheduler.Update(it, At(10));
  ASSERT_TRUE(scheduler.Schedule(0, At(10), &it));
  ASSERT_TRUE(it.request_level);  // worker 0's "s" set is paused until this batch closes
  // A new "s" image need not wait for it: the paused set's room does not count.
  ASSERT_TRUE(scheduler.Enqueue(3, Shape("s", 4), 1, At(11)).ok());
  EXPECT_TRUE(scheduler.HasWork(1, At(11)));
  Iteration other;
  ASSERT_TRUE(scheduler.Schedule(1, At(11), &other));
  EXPECT_FALSE(other.request_level);
  EXPECT_THAT(Stepping(other), ElementsAre("3:0@0/4"));
}

TEST_F(StepSchedulerRequestTest, AFailedSetClosesNamesItsRequestsAndFreesTheWorker) {
  Enqueue(1, Shape(), 3, kT0);
  Enqueue(2, Shape(), 1, kT0);
  Enqueue(3, Shape("other"), 2, kT0);
  Iteration it = Next(kT0);
  EXPECT_THAT(Stepping(it), ElementsAre("1:0@0/2", "1:1@0/2", "1:2@0/2", "2:0@0/2"));
  EXPECT_THAT(scheduler_.Fail(it), ElementsAre(1u, 2u));
  EXPECT_EQ(scheduler_.running_samples(0), 0);
  EXPECT_THAT(RunSet(kT0), ElementsAre("3:0", "3:1"));
}

}  // namespace
}  // namespace tlcm::engine
