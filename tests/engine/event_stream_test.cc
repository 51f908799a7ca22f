// EventStream's reserved slots (events keep the order their places were taken, whichever is
// filled first; a terminal status drops what was never filled) and the EncoderPool (every job
// runs once, Submit waits while the queue is full, the destructor runs what was queued).
#include "engine/event_stream.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "engine/encoder_pool.h"
#include "tests/engine/recording_sink.h"

namespace tlcm::engine {
namespace {

using ::testing::ElementsAre;
using testing::RecordingSink;

EventStream::Event Step(int step) {
  return [step](GenerationEventSink& sink) { sink.OnStep(StepEvent{step, 9, 0, 1}); };
}

struct Stream {
  std::shared_ptr<RecordingSink> sink = std::make_shared<RecordingSink>();
  int closed = 0;
  EventStream events{sink, [this] { ++closed; }};
};

TEST(EventStreamTest, EventsWaitBehindAnUnfilledSlotAndKeepTheirOrder) {
  Stream s;
  s.events.Post(Step(1));
  const EventStream::Slot first = s.events.Reserve();
  const EventStream::Slot second = s.events.Reserve();
  s.events.Post(Step(4));
  s.events.Flush();
  EXPECT_THAT(s.sink->events(), ElementsAre("step 1/9"));
  s.events.Fill(second, Step(3));  // the later place is ready first: it still waits
  s.events.Flush();
  EXPECT_THAT(s.sink->events(), ElementsAre("step 1/9"));
  s.events.Fill(first, Step(2));
  s.events.Flush();
  EXPECT_THAT(s.sink->events(), ElementsAre("step 1/9", "step 2/9", "step 3/9", "step 4/9"));
  EXPECT_EQ(s.closed, 0);
}

TEST(EventStreamTest, TheTerminalStatusDropsUnfilledSlotsButNotFilledOnes) {
  Stream s;
  const EventStream::Slot filled = s.events.Reserve();
  const EventStream::Slot unfilled = s.events.Reserve();
  s.events.Post(Step(3));
  s.events.Fill(filled, Step(1));
  s.events.PostDone(absl::CancelledError("gone"), RequestMetrics{});
  s.events.Fill(unfilled, Step(2));  // too late: ignored
  const EventStream::Slot after = s.events.Reserve();
  s.events.Fill(after, Step(5));  // reserved after the end: ignored
  s.events.Post(Step(6));
  s.events.Flush();
  EXPECT_THAT(s.sink->events(), ElementsAre("step 1/9", "step 3/9", "done CANCELLED"));
  EXPECT_EQ(s.closed, 1);
  EXPECT_EQ(s.sink->violations(), 0);
}

TEST(EventStreamTest, SlotsFilledFromManyThreadsAreDeliveredInPlaceOrderWithoutOverlap) {
  Stream s;
  constexpr int kSlots = 200;
  std::vector<EventStream::Slot> slots;
  for (int i = 0; i < kSlots; ++i) slots.push_back(s.events.Reserve());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Thread t fills every 4th slot, from the last one backwards.
      for (int i = kSlots - 1 - t; i >= 0; i -= 4) {
        s.events.Fill(slots[i], Step(i));
        s.events.Flush();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  s.events.PostDone(absl::OkStatus(), RequestMetrics{});
  s.events.Flush();
  const std::vector<std::string> events = s.sink->events();
  ASSERT_EQ(events.size(), kSlots + 1u);
  for (int i = 0; i < kSlots; ++i) EXPECT_EQ(events[i], absl::StrCat("step ", i, "/9"));
  EXPECT_EQ(events.back(), "done OK");
  EXPECT_EQ(s.sink->violations(), 0);
}

TEST(EncoderPoolTest, RunsEveryJobOnceAndTheDestructorFinishesTheQueue) {
  std::atomic<int> ran{0};
  {
    EncoderPool pool(3, 8);
    EXPECT_EQ(pool.threads(), 3);
    for (int i = 0; i < 100; ++i) pool.Submit([&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(EncoderPoolTest, SubmitWaitsWhileTheQueueIsFull) {
  absl::Notification release;
  std::atomic<int> ran{0};
  EncoderPool pool(1, 2);
  pool.Submit([&] {
    release.WaitForNotification();
    ++ran;
  });  // occupies the only thread
  // Once the thread has taken the first job, two more fit into the queue.
  for (int i = 0; i < 200 && pool.pending() != 1; ++i) absl::SleepFor(absl::Milliseconds(1));
  pool.Submit([&] { ++ran; });
  pool.Submit([&] { ++ran; });
  EXPECT_EQ(pool.pending(), 3);
  absl::Notification fourth_queued;
  std::thread submitter([&] {
    pool.Submit([&] { ++ran; });
    fourth_queued.Notify();
  });
  EXPECT_FALSE(fourth_queued.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  release.Notify();
  EXPECT_TRUE(fourth_queued.WaitForNotificationWithTimeout(absl::Seconds(20)));
  submitter.join();
  for (int i = 0; i < 20000 && ran.load() < 4; ++i) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(ran.load(), 4);
}

TEST(EncoderPoolTest, ThreadsForUsesTheRequestOrHalfTheMachine) {
  EXPECT_EQ(EncoderPool::ThreadsFor(5), 5);
  const int automatic = EncoderPool::ThreadsFor(0);
  EXPECT_GE(automatic, 1);
  EXPECT_LE(automatic, 16);
  EXPECT_EQ(automatic,
            std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 2, 1, 16));
}

}  // namespace
}  // namespace tlcm::engine
