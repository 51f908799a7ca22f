// The batching rules, driven directly with hand-picked times (no threads): key separation,
// max batch size, queue delay, oldest-first across keys (no starvation), splitting of large
// requests, queue limits, removal and eligibility.
#include "engine/batch_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tlcm::engine {
namespace {

using ::testing::ElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1000);
const absl::Duration kDelay = absl::Milliseconds(10);

bool AnyModel(const std::string&) { return true; }

BatchKey Key(const std::string& model = "m", int steps = 4, int width = 64, int height = 64,
             const std::string& sampler = "lcm") {
  return BatchKey{model, steps, width, height, sampler};
}

class BatchQueueTest : public ::testing::Test {
 protected:
  BatchQueueTest() {
    queue_.AddModel("m", /*max_batch_size=*/4, kDelay, /*max_queue_size=*/8);
    queue_.AddModel("other", /*max_batch_size=*/2, kDelay, /*max_queue_size=*/8);
  }

  // Request ids of `batch`'s chunks with their image ranges, e.g. "1:0+2".
  static std::vector<std::string> Chunks(const Batch& batch) {
    std::vector<std::string> out;
    for (const QueuedChunk& c : batch.chunks) {
      out.push_back(std::to_string(c.request_id) + ":" + std::to_string(c.first_image) + "+" +
                    std::to_string(c.num_images));
    }
    return out;
  }

  std::optional<Batch> Take(absl::Time now, bool flush = false) {
    Batch batch;
    if (!queue_.TakeReadyBatch(now, flush, AnyModel, &batch)) return std::nullopt;
    return batch;
  }

  BatchQueue queue_;
};

TEST_F(BatchQueueTest, RequestsWithDifferentKeysNeverShareABatch) {
  ASSERT_TRUE(queue_.Enqueue(Key(), 1, 1, kT0).ok());
  ASSERT_TRUE(queue_.Enqueue(Key("m", 2), 2, 1, kT0).ok());                  // steps
  ASSERT_TRUE(queue_.Enqueue(Key("m", 4, 128), 3, 1, kT0).ok());             // width
  ASSERT_TRUE(queue_.Enqueue(Key("m", 4, 64, 128), 4, 1, kT0).ok());         // height
  ASSERT_TRUE(queue_.Enqueue(Key("m", 4, 64, 64, "tlcm"), 5, 1, kT0).ok());  // sampler
  ASSERT_TRUE(queue_.Enqueue(Key("other"), 6, 1, kT0).ok());                 // model
  ASSERT_TRUE(queue_.Enqueue(Key(), 7, 1, kT0).ok());                        // same key as 1
  std::vector<std::vector<std::string>> batches;
  while (auto batch = Take(kT0 + kDelay)) batches.push_back(Chunks(*batch));
  EXPECT_THAT(batches,
              ElementsAre(ElementsAre("1:0+1", "7:0+1"), ElementsAre("2:0+1"), ElementsAre("3:0+1"),
                          ElementsAre("4:0+1"), ElementsAre("5:0+1"), ElementsAre("6:0+1")));
  EXPECT_TRUE(queue_.empty());
}

TEST_F(BatchQueueTest, AFullBatchIsReadyAtOnceAndTheRestWaits) {
  for (uint64_t id = 1; id <= 5; ++id) ASSERT_TRUE(queue_.Enqueue(Key(), id, 1, kT0).ok());
  auto full = Take(kT0);
  ASSERT_TRUE(full.has_value());
  EXPECT_THAT(Chunks(*full), ElementsAre("1:0+1", "2:0+1", "3:0+1", "4:0+1"));
  EXPECT_EQ(full->num_images, 4);
  EXPECT_FALSE(Take(kT0).has_value());  // request 5 waits for its delay
  EXPECT_EQ(queue_.queued_requests("m"), 1);
}

TEST_F(BatchQueueTest, APartialBatchIsReadyExactlyAfterTheQueueDelay) {
  ASSERT_TRUE(queue_.Enqueue(Key(), 1, 1, kT0).ok());
  ASSERT_TRUE(queue_.Enqueue(Key(), 2, 1, kT0 + absl::Milliseconds(4)).ok());
  EXPECT_EQ(queue_.NextReadyTime(false, AnyModel), kT0 + kDelay);  // from the first arrival
  EXPECT_FALSE(Take(kT0 + kDelay - absl::Microseconds(1)).has_value());
  auto batch = Take(kT0 + kDelay);
  ASSERT_TRUE(batch.has_value());
  EXPECT_THAT(Chunks(*batch), ElementsAre("1:0+1", "2:0+1"));
  EXPECT_EQ(queue_.NextReadyTime(false, AnyModel), absl::InfiniteFuture());
}

TEST_F(BatchQueueTest, FlushMakesEveryBatchReady) {
  ASSERT_TRUE(queue_.Enqueue(Key(), 1, 1, kT0).ok());
  EXPECT_EQ(queue_.NextReadyTime(true, AnyModel), absl::InfinitePast());
  EXPECT_TRUE(Take(kT0, /*flush=*/true).has_value());
}

TEST_F(BatchQueueTest, ARequestsImagesCountTowardTheBatchAndItStaysWhole) {
  ASSERT_TRUE(queue_.Enqueue(Key(), 1, 3, kT0).ok());
  ASSERT_TRUE(queue_.Enqueue(Key(), 2, 2, kT0).ok());  // does not fit next to 3: new batch
  auto first = Take(kT0);  // closed by request 2, hence ready without waiting
  ASSERT_TRUE(first.has_value());
  EXPECT_THAT(Chunks(*first), ElementsAre("1:0+3"));
  EXPECT_FALSE(Take(kT0).has_value());
  ASSERT_TRUE(queue_.Enqueue(Key(), 3, 2, kT0).ok());  // fills request 2's batch
  auto second = Take(kT0);
  ASSERT_TRUE(second.has_value());
  EXPECT_THAT(Chunks(*second), ElementsAre("2:0+2", "3:0+2"));
}

TEST_F(BatchQueueTest, ALargeRequestIsSplitAndKeepsItsImageIndices) {
  ASSERT_TRUE(queue_.Enqueue(Key(), 1, 1, kT0).ok());
  auto admission = queue_.Enqueue(Key(), 2, 10, kT0);
  ASSERT_TRUE(admission.ok());
  EXPECT_EQ(admission->num_chunks, 3);
  EXPECT_EQ(admission->position, 1);
  EXPECT_EQ(queue_.queued_requests("m"), 2);
  auto a = Take(kT0);
  auto b = Take(kT0);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_THAT(Chunks(*a), ElementsAre("1:0+1", "2:0+3"));
  EXPECT_THAT(Chunks(*b), ElementsAre("2:3+4"));
  EXPECT_FALSE(Take(kT0).has_value());        // the last 3 images wait for company or the delay
  EXPECT_EQ(queue_.queued_requests("m"), 1);  // request 2 still has a chunk queued
  auto c = Take(kT0 + kDelay);
  ASSERT_TRUE(c.has_value());
  EXPECT_THAT(Chunks(*c), ElementsAre("2:7+3"));
  EXPECT_EQ(queue_.queued_requests("m"), 0);
}

TEST_F(BatchQueueTest, TheOldestReadyBatchGoesFirstSoNoKeyStarves) {
  // Key B has one lonely request; key A keeps producing full batches.
  ASSERT_TRUE(queue_.Enqueue(Key("m", 2), 100, 1, kT0).ok());
  uint64_t id = 1;
  std::vector<std::vector<std::string>> taken;
  for (int round = 0; round < 6; ++round) {
    const absl::Time now = kT0 + absl::Milliseconds(3 * round);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(queue_.Enqueue(Key(), id++, 1, now).ok());
    auto batch = Take(now);
    ASSERT_TRUE(batch.has_value());
    taken.push_back(Chunks(*batch));
  }
  // Rounds at 0, 3, 6, 9 ms serve key A; at 12 ms key B's batch (opened at 0) has waited 10 ms
  // and is the oldest ready one, ahead of A's batches.
  EXPECT_THAT(taken[3], ElementsAre("13:0+1", "14:0+1", "15:0+1", "16:0+1"));
  EXPECT_THAT(taken[4], ElementsAre("100:0+1"));
}

TEST_F(BatchQueueTest, AFullQueueRefusesRequestsOfThatModelOnly) {
  BatchQueue queue;
  queue.AddModel("m", 1, kDelay, /*max_queue_size=*/2);
  queue.AddModel("other", 1, kDelay, 2);
  ASSERT_TRUE(queue.Enqueue(Key(), 1, 1, kT0).ok());
  ASSERT_TRUE(queue.Enqueue(Key(), 2, 3, kT0).ok());  // a split request counts once
  auto refused = queue.Enqueue(Key(), 3, 1, kT0);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("queue is full"));
  EXPECT_TRUE(queue.Enqueue(Key("other"), 4, 1, kT0).ok());
  Batch batch;
  ASSERT_TRUE(queue.TakeReadyBatch(kT0, false, AnyModel, &batch));  // request 1 leaves
  EXPECT_TRUE(queue.Enqueue(Key(), 5, 1, kT0).ok());
}

TEST_F(BatchQueueTest, RemoveTakesOutEveryChunkOfARequest) {
  ASSERT_TRUE(queue_.Enqueue(Key(), 1, 1, kT0).ok());
  ASSERT_TRUE(queue_.Enqueue(Key(), 2, 6, kT0).ok());  // chunks 0+3, 3+3
  ASSERT_TRUE(queue_.Enqueue(Key(), 3, 1, kT0).ok());
  EXPECT_EQ(queue_.Remove(2), 2);
  EXPECT_EQ(queue_.Remove(2), 0);
  EXPECT_EQ(queue_.queued_requests("m"), 2);
  auto first = Take(kT0);  // the batch closed when request 2 arrived stays closed
  ASSERT_TRUE(first.has_value());
  EXPECT_THAT(Chunks(*first), ElementsAre("1:0+1"));
  auto second = Take(kT0 + kDelay);
  ASSERT_TRUE(second.has_value());
  EXPECT_THAT(Chunks(*second), ElementsAre("3:0+1"));
  EXPECT_TRUE(queue_.empty());
  auto admission = queue_.Enqueue(Key(), 4, 1, kT0);
  ASSERT_TRUE(admission.ok());
  EXPECT_EQ(admission->position, 0);
}

TEST_F(BatchQueueTest, OnlyEligibleModelsAreTaken) {
  ASSERT_TRUE(queue_.Enqueue(Key("other"), 1, 2, kT0).ok());
  ASSERT_TRUE(queue_.Enqueue(Key("m"), 2, 4, kT0 + absl::Milliseconds(1)).ok());
  const auto only_m = [](const std::string& model) { return model == "m"; };
  EXPECT_EQ(queue_.NextReadyTime(false, only_m), absl::InfinitePast());
  Batch batch;
  ASSERT_TRUE(queue_.TakeReadyBatch(kT0, false, only_m, &batch));
  EXPECT_EQ(batch.key.model, "m");
  const auto none = [](const std::string&) { return false; };
  EXPECT_FALSE(queue_.TakeReadyBatch(kT0, true, none, &batch));
  EXPECT_EQ(queue_.NextReadyTime(true, none), absl::InfiniteFuture());
}

TEST_F(BatchQueueTest, PositionCountsRequestsOfTheSameModelAhead) {
  EXPECT_EQ(queue_.Enqueue(Key(), 1, 1, kT0)->position, 0);
  EXPECT_EQ(queue_.Enqueue(Key("m", 2), 2, 1, kT0)->position, 1);
  EXPECT_EQ(queue_.Enqueue(Key("other"), 3, 1, kT0)->position, 0);
  EXPECT_EQ(queue_.Enqueue(Key(), 4, 1, kT0)->position, 2);
}

}  // namespace
}  // namespace tlcm::engine
