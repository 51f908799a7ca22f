// The engine with fake pipelines and a fake clock: readiness and warm-up, batching, splitting
// with seeds kept, event order, cancellation and deadlines (queued and mid-batch), admission
// errors, failure isolation, several workers, drain, and exactly one terminal status per
// request under concurrent load. Tests wait on conditions (never sleep for timing); time moves
// only when a test advances the fake clock.
#include "engine/engine.h"

#include <atomic>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "image/jpeg_codec.h"
#include "image/png_codec.h"
#include "image/webp_codec.h"
#include "tests/engine/fake_clock.h"
#include "tests/engine/fake_pipeline.h"
#include "tests/engine/recording_sink.h"

namespace tlcm::engine {
namespace {

using ::testing::ElementsAre;
using testing::FakeClock;
using testing::FakePipelineControl;
using ::testing::HasSubstr;
using testing::RecordingObserver;
using testing::RecordingSink;
using ::testing::UnorderedElementsAre;

// Polls `condition` (for state only observable by polling, such as ready()); true once it
// holds, false after 20 s.
template <typename F>
bool Eventually(F condition) {
  for (int i = 0; i < 20000; ++i) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

std::vector<std::string> Prompts(const FakePipelineControl::RunRecord& run) {
  std::vector<std::string> out;
  for (const ImageJob& job : run.jobs) out.push_back(job.prompt);
  return out;
}

std::vector<uint64_t> Seeds(const FakePipelineControl::RunRecord& run) {
  std::vector<uint64_t> out;
  for (const ImageJob& job : run.jobs) out.push_back(job.seed);
  return out;
}

class EngineTest : public ::testing::Test {
 protected:
  // One CPU worker, model "m": batches of up to 4 images, no queue delay, 16 queued requests.
  EngineOptions Options(std::vector<std::string> devices = {"cpu"}) {
    EngineOptions options;
    options.devices = std::move(devices);
    options.clock = &clock_;
    options.observer = &observer_;
    options.drain_grace_micros = 0;
    options.models.push_back(Model("m"));
    return options;
  }
  static ModelOptions Model(const std::string& name) {
    ModelOptions model;
    model.spec.name = name;
    model.batching.max_batch_size = 4;
    model.batching.max_queue_delay_micros = 0;
    model.batching.max_queue_size = 16;
    return model;
  }

  void Start(EngineOptions options) {
    auto engine = Engine::Create(std::move(options), control_.Factory());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_TRUE(engine_->WaitUntilReady().ok());
  }

  // One worker taking batches of one image and a queue of `max_queue_size`, busy with a request
  // ("running") held before its first step (manual stepping on). Null (and a test failure) when
  // the engine did not start or the request never reached its step.
  std::shared_ptr<RecordingSink> StartWithTheWorkerBusy(int max_queue_size = 16) {
    EngineOptions options = Options();
    options.models[0].batching.max_batch_size = 1;
    options.models[0].batching.max_queue_size = max_queue_size;
    Start(options);
    if (engine_ == nullptr) return nullptr;
    control_.SetManualStepping(true);
    auto running = Submit(Request("running"));
    if (!control_.WaitForBlockedSteps(1)) {
      ADD_FAILURE() << "the running request never reached its first step";
      return nullptr;
    }
    return running;
  }

  void TearDown() override {
    control_.HoldLoading(false);
    control_.SetManualStepping(false);
    engine_.reset();
  }

  static GenerationRequest Request(const std::string& prompt = "a cat", uint64_t seed = 1) {
    GenerationRequest request;
    request.model = "m";
    request.prompt = prompt;
    request.seed = seed;
    return request;
  }

  // Submits `request`, expecting admission.
  std::shared_ptr<RecordingSink> Submit(GenerationRequest request,
                                        RequestHandle* handle = nullptr) {
    auto sink = std::make_shared<RecordingSink>();
    auto admitted = engine_->Submit(std::move(request), sink);
    EXPECT_TRUE(admitted.ok()) << admitted.status();
    if (admitted.ok() && handle != nullptr) *handle = *admitted;
    return sink;
  }

  static absl::StatusCode DoneCode(RecordingSink& sink) {
    auto status = sink.WaitForDone();
    EXPECT_TRUE(status.has_value()) << "no terminal status";
    return status.has_value() ? status->code() : absl::StatusCode::kUnknown;
  }

  FakeClock clock_;
  RecordingObserver observer_;
  FakePipelineControl control_;
  std::unique_ptr<Engine> engine_;
};

// ---------------------------------------------------------------------------------------------
// Readiness, warm-up, options

TEST_F(EngineTest, ReadyOnlyAfterEveryPipelineLoadedAndWarmedUp) {
  control_.HoldLoading(true);
  auto engine = Engine::Create(Options({"cpu", "cpu"}), control_.Factory());
  ASSERT_TRUE(engine.ok());
  engine_ = *std::move(engine);
  EXPECT_FALSE(engine_->ready());
  auto refused = engine_->Submit(Request(), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("loading"));
  auto models = engine_->ListModels();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].info.name, "m");
  EXPECT_FALSE(models[0].ready);

  control_.HoldLoading(false);
  ASSERT_TRUE(engine_->WaitUntilReady().ok());
  EXPECT_TRUE(engine_->ready());
  EXPECT_EQ(control_.created_pipelines(), 2);
  // One warm-up generation per device: one image, the smallest step count, the default size.
  auto runs = control_.runs();
  ASSERT_EQ(runs.size(), 2u);
  for (const auto& run : runs) {
    EXPECT_TRUE(run.warmup);
    EXPECT_EQ(run.key, (BatchKey{"m", 2, 64, 64, "lcm"}));
    EXPECT_EQ(run.jobs.size(), 1u);
  }
  EXPECT_EQ(observer_.warmup_batches().size(), 2u);
  EXPECT_EQ(observer_.workers().size(), 2u);
  models = engine_->ListModels();
  EXPECT_TRUE(models[0].ready);
  EXPECT_EQ(models[0].info.samplers, (std::vector<std::string>{"lcm", "tlcm"}));
  EXPECT_THAT(models[0].devices, ElementsAre("cpu", "cpu"));
  EXPECT_EQ(models[0].batching.max_batch_size, 4);
}

TEST_F(EngineTest, ALoadingFailureIsReportedAndRefusesRequests) {
  control_.FailCreate("m", absl::NotFoundError("model_index.json: no such file"));
  auto engine = Engine::Create(Options(), control_.Factory());
  ASSERT_TRUE(engine.ok());
  engine_ = *std::move(engine);
  absl::Status status = engine_->WaitUntilReady();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("loading model \"m\" on cpu"));
  EXPECT_THAT(status.message(), HasSubstr("model_index.json"));
  EXPECT_FALSE(engine_->ready());
  auto refused = engine_->Submit(Request(), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("failed to load"));
}

TEST_F(EngineTest, CreateRejectsBadOptionsNamingTheOption) {
  const auto code_and_message = [&](EngineOptions options) {
    return Engine::Create(std::move(options), control_.Factory()).status();
  };
  EngineOptions no_devices = Options({});
  EXPECT_THAT(code_and_message(no_devices).message(), HasSubstr("devices"));
  EngineOptions duplicate = Options();
  duplicate.models.push_back(Model("m"));
  EXPECT_THAT(code_and_message(duplicate).message(), HasSubstr("duplicate model name"));
  EngineOptions unknown_device = Options();
  unknown_device.models[0].devices = {"cuda:7"};
  EXPECT_THAT(code_and_message(unknown_device).message(), HasSubstr("\"cuda:7\""));
  EngineOptions zero_batch = Options();
  zero_batch.models[0].batching.max_batch_size = 0;
  absl::Status status = code_and_message(zero_batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("batching.max_batch_size"));
  EngineOptions negative_encoders = Options();
  negative_encoders.encoder_threads = -1;
  EXPECT_THAT(code_and_message(negative_encoders).message(), HasSubstr("encoder_threads"));
  EngineOptions idle_device = Options({"cpu", "cuda:0"});
  idle_device.models[0].devices = {"cpu"};
  EXPECT_THAT(code_and_message(idle_device).message(), HasSubstr("holds no model"));
  EXPECT_EQ(Engine::Create(Options(), nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Events and images

TEST_F(EngineTest, EventsArriveInOrderWithOneTerminalStatus) {
  Start(Options());
  GenerationRequest request = Request("a cat", 7);
  request.num_images = 2;
  request.steps = 2;
  request.previews = true;
  auto sink = Submit(request);
  EXPECT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  EXPECT_THAT(sink->events(),
              ElementsAre("queued 0", "started cpu#0 batch 2 images 0+2", "step 1/2",
                          "preview 0 @1", "preview 1 @1", "step 2/2", "image 0 seed 7",
                          "image 1 seed 8", "done OK"));  // no preview after the last step
  EXPECT_EQ(sink->violations(), 0);
  const auto previews = sink->previews();
  ASSERT_EQ(previews.size(), 2u);
  EXPECT_EQ(previews[0].width, 8);
  EXPECT_TRUE(DecodePng(previews[0].data).ok());
}

TEST_F(EngineTest, EventsStayInOrderWhenManyEncoderThreadsFinishInAnyOrder) {
  EngineOptions options = Options();
  options.encoder_threads = 4;
  Start(options);
  for (int round = 0; round < 20; ++round) {
    GenerationRequest request = Request("a cat", 100 * round);
    request.num_images = 4;
    request.steps = 3;
    request.previews = true;
    auto sink = Submit(request);
    ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
    std::vector<std::string> expected = {"queued 0", "started cpu#0 batch 4 images 0+4"};
    for (int step = 1; step <= 3; ++step) {
      expected.push_back(absl::StrCat("step ", step, "/3"));
      if (step == 3) break;  // the image follows the last step, not a preview
      for (int i = 0; i < 4; ++i) expected.push_back(absl::StrCat("preview ", i, " @", step));
    }
    for (int i = 0; i < 4; ++i) {
      expected.push_back(absl::StrCat("image ", i, " seed ", 100 * round + i));
    }
    expected.push_back("done OK");
    ASSERT_EQ(sink->events(), expected) << "round " << round;
    EXPECT_EQ(sink->violations(), 0);
    EXPECT_EQ(sink->metrics().num_images, 4);
  }
  EXPECT_EQ(engine_->encoder_threads(), 4);
}

TEST_F(EngineTest, ImagesAreEncodedOffTheWorkerSoSlowEncodingDoesNotStallTheDevice) {
  // An encoder that blocks on the first request's image until released: were images encoded on
  // the device's worker, the second request could not even start before the release.
  absl::Notification release;
  EngineOptions options = Options();
  options.models[0].batching.max_batch_size = 1;
  options.encoder_threads = 2;
  options.image_encoder = [&](const RgbImage& image, ImageFormat format, int quality) {
    if (testing::SeedOfFakeImage(image) == 1) {
      release.WaitForNotificationWithTimeout(absl::Seconds(20));
    }
    return EncodeImage(image, format, quality);
  };
  Start(options);
  auto slow = Submit(Request("slow", 1));
  auto next = Submit(Request("next", 2));
  EXPECT_EQ(DoneCode(*next), absl::StatusCode::kOk);  // ran and was delivered meanwhile
  EXPECT_FALSE(slow->done());
  EXPECT_TRUE(slow->WaitForEvent("step 4/4"));  // its batch itself was over
  release.Notify();
  EXPECT_EQ(DoneCode(*slow), absl::StatusCode::kOk);
  EXPECT_EQ(slow->images().size(), 1u);
}

TEST_F(EngineTest, AnEncoderFailureEndsOnlyThatRequestAsInternal) {
  EngineOptions options = Options();
  options.image_encoder = [](const RgbImage& image, ImageFormat format,
                             int quality) -> absl::StatusOr<std::string> {
    if (testing::SeedOfFakeImage(image) == 1) return absl::InternalError("codec broke");
    return EncodeImage(image, format, quality);
  };
  Start(options);
  auto broken = Submit(Request("broken", 1));
  auto fine = Submit(Request("fine", 2));
  EXPECT_EQ(DoneCode(*broken), absl::StatusCode::kInternal);
  EXPECT_THAT(broken->status().message(), HasSubstr("encoding image 0: codec broke"));
  EXPECT_THAT(broken->status().message(), HasSubstr("model \"m\" on cpu"));
  EXPECT_EQ(DoneCode(*fine), absl::StatusCode::kOk);
  EXPECT_EQ(fine->images().size(), 1u);
}

TEST_F(EngineTest, CheckProgressNamesAWorkerStuckInsideABatch) {
  Start(Options());
  const absl::Duration limit = absl::Seconds(60);
  EXPECT_TRUE(engine_->CheckProgress(limit).ok());  // idle
  clock_.Advance(absl::Seconds(120));
  EXPECT_TRUE(engine_->CheckProgress(limit).ok());  // idle for long is fine
  control_.SetManualStepping(true);
  auto sink = Submit(Request());
  ASSERT_TRUE(control_.WaitForBlockedSteps(1));
  clock_.Advance(absl::Seconds(59));
  EXPECT_TRUE(engine_->CheckProgress(limit).ok());
  clock_.Advance(absl::Seconds(2));
  const absl::Status stuck = engine_->CheckProgress(limit);
  EXPECT_EQ(stuck.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(stuck.message(), HasSubstr("worker 0 (cpu)"));
  EXPECT_THAT(stuck.message(), HasSubstr("model \"m\""));
  control_.AllowSteps(1);  // a step boundary is progress
  ASSERT_TRUE(sink->WaitForEvent("step 1/4"));
  EXPECT_TRUE(engine_->CheckProgress(limit).ok());
  control_.SetManualStepping(false);
  EXPECT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  EXPECT_TRUE(engine_->CheckProgress(limit).ok());
  // The batch kept its worker busy for the 61 s the fake clock moved while it ran.
  ASSERT_TRUE(Eventually([&] { return !observer_.batches().empty(); }));
  EXPECT_DOUBLE_EQ(observer_.batches()[0].worker_ms, 61'000);
}

TEST_F(EngineTest, ImagesAreEncodedInTheRequestedFormat) {
  Start(Options());
  GenerationRequest png = Request("png", 11);
  GenerationRequest jpeg = Request("jpeg", 12);
  jpeg.format = ImageFormat::kJpeg;
  jpeg.quality = 80;
  GenerationRequest webp = Request("webp", 13);
  webp.format = ImageFormat::kWebp;
  webp.width = 128;
  webp.height = 32;
  auto png_sink = Submit(png);
  auto jpeg_sink = Submit(jpeg);
  auto webp_sink = Submit(webp);
  for (auto* sink : {png_sink.get(), jpeg_sink.get(), webp_sink.get()}) {
    ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
    ASSERT_EQ(sink->images().size(), 1u);
  }
  const GeneratedImage png_image = png_sink->images()[0];
  EXPECT_EQ(png_image.format, ImageFormat::kPng);
  auto decoded = DecodePng(png_image.data);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(testing::SeedOfFakeImage(*decoded), 11u);  // lossless: the pixels are the pipeline's

  const GeneratedImage jpeg_image = jpeg_sink->images()[0];
  EXPECT_EQ(jpeg_image.format, ImageFormat::kJpeg);
  auto jpeg_decoded = DecodeJpeg(jpeg_image.data);
  ASSERT_TRUE(jpeg_decoded.ok());
  EXPECT_EQ(jpeg_decoded->width, 64);

  const GeneratedImage webp_image = webp_sink->images()[0];
  EXPECT_EQ(webp_image.format, ImageFormat::kWebp);
  EXPECT_EQ(webp_image.width, 128);
  EXPECT_EQ(webp_image.height, 32);
  auto webp_decoded = DecodeWebp(webp_image.data);
  ASSERT_TRUE(webp_decoded.ok());
  EXPECT_EQ(webp_decoded->width, 128);
}

TEST_F(EngineTest, MetricsComeFromTheClockAndThePipelinesStageTimes) {
  EngineOptions options = Options();
  options.models[0].batching.max_queue_delay_micros = 5000;
  Start(options);
  auto sink = Submit(Request());
  clock_.Advance(absl::Milliseconds(5));
  ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  const RequestMetrics metrics = sink->metrics();
  EXPECT_DOUBLE_EQ(metrics.queue_ms, 5);
  EXPECT_DOUBLE_EQ(metrics.text_encode_ms, 1);
  EXPECT_DOUBLE_EQ(metrics.denoise_ms, 2);
  EXPECT_DOUBLE_EQ(metrics.decode_ms, 3);
  EXPECT_DOUBLE_EQ(metrics.total_ms, 5);  // the fake clock stood still while running
  EXPECT_DOUBLE_EQ(metrics.image_encode_ms, 0);
  EXPECT_EQ(metrics.batch_size, 1);
  EXPECT_EQ(metrics.num_batches, 1);
  EXPECT_EQ(metrics.num_images, 1);
  EXPECT_EQ(metrics.device, "cpu");
}

TEST_F(EngineTest, TheObserverSeesDeviceMemoryAfterEveryRun) {
  DeviceMemory memory;
  memory.allocated_bytes = 1000;
  memory.reserved_bytes = 4096;
  control_.SetDeviceMemory(memory);
  Start(Options({"cpu", "cpu"}));
  EXPECT_EQ(observer_.memory_reports(), 2);  // after each worker's warm-up
  ASSERT_EQ(DoneCode(*Submit(Request())), absl::StatusCode::kOk);
  EXPECT_EQ(observer_.memory_reports(), 3);  // reported before the batch's requests end
  const auto reported = observer_.device_memory();
  ASSERT_EQ(reported.size(), 2u);
  for (const auto& [worker, m] : reported) {
    EXPECT_EQ(m.allocated_bytes, 1000) << worker;
    EXPECT_EQ(m.reserved_bytes, 4096) << worker;
    EXPECT_EQ(m.resident_bytes, -1) << worker;  // not measured
  }
}

TEST_F(EngineTest, TheObserverSeesAdmissionsBatchesAndGauges) {
  Start(Options());
  auto a = Submit(Request("same prompt", 1));
  ASSERT_EQ(DoneCode(*a), absl::StatusCode::kOk);
  EXPECT_FALSE(engine_->Submit(Request(), nullptr).ok());
  GenerationRequest unknown = Request();
  unknown.model = "unknown";
  EXPECT_FALSE(engine_->Submit(unknown, std::make_shared<RecordingSink>()).ok());
  EXPECT_EQ(observer_.admissions("m:OK"), 1);
  EXPECT_EQ(observer_.admissions("m:INVALID_ARGUMENT"), 1);
  EXPECT_EQ(observer_.admissions(":NOT_FOUND"), 1);  // no label value from the client's input
  EXPECT_EQ(observer_.done("m:OK"), 1);
  EXPECT_EQ(observer_.images("m"), 1);
  EXPECT_EQ(observer_.queue_depth("m"), 0);
  EXPECT_EQ(observer_.max_queue_depth("m"), 1);
  EXPECT_EQ(observer_.in_flight("m"), 0);
  auto batches = observer_.batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].batch_size, 1);
  EXPECT_EQ(batches[0].device, "cpu");
  EXPECT_DOUBLE_EQ(batches[0].step_ms, 0.5);  // 2 ms of denoising over 4 steps
  EXPECT_EQ(batches[0].timings.prompt_cache_misses, 1);
}

// ---------------------------------------------------------------------------------------------
// Batching

TEST_F(EngineTest, BatchesHoldOneKeyAndAtMostMaxBatchSizeImages) {
  EngineOptions options = Options();
  options.models[0].batching.max_batch_size = 2;
  options.models[0].batching.max_queue_delay_micros = 1'000'000;
  Start(options);
  GenerationRequest two_steps = Request("d");
  two_steps.steps = 2;
  auto a = Submit(Request("a"));
  auto b = Submit(Request("b"));  // fills the batch: it runs without waiting
  ASSERT_TRUE(control_.WaitForRequestRuns(1));
  auto c = Submit(Request("c"));
  auto d = Submit(two_steps);
  clock_.Advance(absl::Seconds(1));  // c's and d's batches have waited long enough
  for (auto* sink : {a.get(), b.get(), c.get(), d.get()}) {
    EXPECT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  }
  auto runs = control_.request_runs();
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_THAT(Prompts(runs[0]), ElementsAre("a", "b"));
  EXPECT_THAT(Prompts(runs[1]), ElementsAre("c"));  // opened first
  EXPECT_THAT(Prompts(runs[2]), ElementsAre("d"));
  EXPECT_EQ(runs[2].key.steps, 2);
  EXPECT_THAT(a->events(), ::testing::Contains("started cpu#0 batch 2 images 0+1"));
}

TEST_F(EngineTest, APartialBatchWaitsForItsQueueDelay) {
  EngineOptions options = Options();
  options.models[0].batching.max_batch_size = 2;
  options.models[0].batching.max_queue_delay_micros = 1000;
  Start(options);
  auto a = Submit(Request("a"));
  clock_.Advance(absl::Microseconds(999));
  auto b = Submit(Request("b"));  // joins a's batch: a did not leave before its delay
  EXPECT_EQ(DoneCode(*a), absl::StatusCode::kOk);
  EXPECT_EQ(DoneCode(*b), absl::StatusCode::kOk);
  auto runs = control_.request_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_THAT(Prompts(runs[0]), ElementsAre("a", "b"));
}

TEST_F(EngineTest, ALargeRequestIsSplitAcrossBatchesAndKeepsItsSeeds) {
  EngineOptions options = Options();
  options.models[0].batching.max_batch_size = 2;
  Start(options);
  GenerationRequest request = Request("many", 100);
  request.num_images = 5;
  auto sink = Submit(request);
  ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  auto runs = control_.request_runs();
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_THAT(Seeds(runs[0]), ElementsAre(100, 101));
  EXPECT_THAT(Seeds(runs[1]), ElementsAre(102, 103));
  EXPECT_THAT(Seeds(runs[2]), ElementsAre(104));
  auto images = sink->images();
  ASSERT_EQ(images.size(), 5u);
  std::set<int> indices;
  for (const GeneratedImage& image : images) {
    indices.insert(image.index);
    EXPECT_EQ(image.seed, 100u + image.index);
    auto decoded = DecodePng(image.data);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(testing::SeedOfFakeImage(*decoded), image.seed);
  }
  EXPECT_THAT(indices, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_EQ(sink->metrics().num_batches, 3);
  EXPECT_EQ(sink->metrics().batch_size, 2);
  EXPECT_EQ(sink->metrics().num_images, 5);
  EXPECT_EQ(sink->done_count(), 1);
  EXPECT_EQ(sink->violations(), 0);
}

TEST_F(EngineTest, ARandomSeedIsDrawnAndReported) {
  Start(Options());
  GenerationRequest request = Request();
  request.seed.reset();
  request.num_images = 2;
  RequestHandle handle;
  auto sink = Submit(request, &handle);
  ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  EXPECT_LT(handle.seed(), uint64_t{1} << 53);
  auto images = sink->images();
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].seed, handle.seed());
  EXPECT_EQ(images[1].seed, handle.seed() + 1);
  EXPECT_THAT(Seeds(control_.request_runs()[0]), ElementsAre(handle.seed(), handle.seed() + 1));
}

TEST_F(EngineTest, SeveralWorkersRunBatchesAtTheSameTime) {
  EngineOptions options = Options({"cpu", "cpu"});
  options.models[0].batching.max_batch_size = 1;
  Start(options);
  control_.SetManualStepping(true);
  auto a = Submit(Request("a"));
  auto b = Submit(Request("b"));
  ASSERT_TRUE(control_.WaitForBlockedSteps(2));  // both batches are inside Run at once
  control_.SetManualStepping(false);
  ASSERT_EQ(DoneCode(*a), absl::StatusCode::kOk);
  ASSERT_EQ(DoneCode(*b), absl::StatusCode::kOk);
  std::set<std::string> started;
  for (auto* sink : {a.get(), b.get()}) {
    for (const std::string& event : sink->events()) {
      if (event.rfind("started", 0) == 0) started.insert(event);
    }
  }
  EXPECT_THAT(started, UnorderedElementsAre("started cpu#0 batch 1 images 0+1",
                                            "started cpu#1 batch 1 images 0+1"));
}

TEST_F(EngineTest, ModelsRunOnlyOnTheirDevices) {
  EngineOptions options = Options({"dev0", "dev1"});
  options.models[0] = Model("a");
  options.models[0].devices = {"dev0"};
  options.models.push_back(Model("b"));
  options.models[1].devices = {"dev1"};
  Start(options);
  EXPECT_EQ(control_.created_pipelines(), 2);
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 6; ++i) {
    GenerationRequest request = Request(absl::StrCat("p", i));
    request.model = i % 2 == 0 ? "a" : "b";
    sinks.push_back(Submit(request));
  }
  for (auto& sink : sinks) EXPECT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  for (const auto& run : control_.request_runs()) {
    EXPECT_EQ(run.device, run.key.model == "a" ? "dev0" : "dev1");
  }
  auto models = engine_->ListModels();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_THAT(models[0].devices, ElementsAre("dev0"));
  EXPECT_THAT(models[1].devices, ElementsAre("dev1"));
}

// ---------------------------------------------------------------------------------------------
// Admission errors

TEST_F(EngineTest, InvalidRequestsAreRefusedNamingTheFieldAndRule) {
  Start(Options());
  auto sink = std::make_shared<RecordingSink>();
  GenerationRequest unknown = Request();
  unknown.model = "nope";
  auto status = engine_->Submit(unknown, sink).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("\"nope\" is not served here (models: m)"));
  unknown.model = std::string(1 << 20, 'm');  // cut, not echoed into the status whole
  status = engine_->Submit(unknown, sink).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_LT(status.message().size(), 200u);

  GenerationRequest steps = Request();
  steps.steps = 20;
  status = engine_->Submit(steps, sink).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("steps: 20 is outside the model's range [2, 8]"));

  GenerationRequest width = Request();
  width.width = 100;
  status = engine_->Submit(width, sink).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("width: 100 is not a positive multiple of 8"));

  GenerationRequest empty = Request("  ");
  EXPECT_EQ(engine_->Submit(empty, sink).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->Submit(Request(), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sink->events().empty());  // a refused request gets no event
}

TEST_F(EngineTest, APassedDeadlineIsRefusedAtAdmission) {
  Start(Options());
  GenerationRequest request = Request();
  request.deadline = clock_.Now();
  EXPECT_EQ(engine_->Submit(request, std::make_shared<RecordingSink>()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(EngineTest, ARequestThatCannotFinishBeforeItsDeadlineIsRefusedAtAdmission) {
  Start(Options());
  GenerationRequest big = Request("big", 2);
  big.width = 256;
  big.height = 256;
  big.steps = 8;
  big.num_images = 4;  // 0.065536 MP x 8 steps x 4 images = 2.097 megapixel-steps
  big.deadline = clock_.Now() + absl::Microseconds(1500);
  // Nothing measured yet (warm-ups do not count): admitted on trust.
  EXPECT_EQ(DoneCode(*Submit(big)), absl::StatusCode::kOk);
  // The fake pipeline reports 0.5 ms of denoising per step: 1.907 ms per megapixel-step for
  // that set of 4 images. A small request afterwards is slower per megapixel-step; the fastest
  // rate is kept.
  GenerationRequest small = Request("small", 3);
  small.steps = 2;  // 64x64: 0.004 megapixel-steps in 0.5 ms per step
  EXPECT_EQ(DoneCode(*Submit(small)), absl::StatusCode::kOk);
  // The same big request now needs at least 4 ms: a deadline 1.5 ms away cannot be met.
  auto sink = std::make_shared<RecordingSink>();
  const absl::Status refused = engine_->Submit(big, sink).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(refused.message(), HasSubstr("needs at least 4ms of denoising"));
  EXPECT_THAT(refused.message(), HasSubstr("4 x 256x256 x 8 steps"));
  EXPECT_THAT(refused.message(), HasSubstr("its deadline leaves 1ms"));
  EXPECT_EQ(observer_.admissions("m:DEADLINE_EXCEEDED"), 1);
  big.deadline = clock_.Now() + absl::Milliseconds(5);  // enough
  EXPECT_EQ(DoneCode(*Submit(big)), absl::StatusCode::kOk);
}

TEST_F(EngineTest, AFullQueueAnswersResourceExhaustedAtOnce) {
  auto running = StartWithTheWorkerBusy(/*max_queue_size=*/1);
  ASSERT_NE(running, nullptr);
  auto queued = Submit(Request("queued"));
  auto refused = engine_->Submit(Request("refused"), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("queue is full"));
  control_.SetManualStepping(false);
  EXPECT_EQ(DoneCode(*running), absl::StatusCode::kOk);
  EXPECT_EQ(DoneCode(*queued), absl::StatusCode::kOk);
}

// ---------------------------------------------------------------------------------------------
// Cancellation and deadlines

TEST_F(EngineTest, CancellingAQueuedRequestEndsItAtOnceAndFreesItsPlace) {
  auto running = StartWithTheWorkerBusy(/*max_queue_size=*/1);
  ASSERT_NE(running, nullptr);
  RequestHandle handle;
  auto queued = Submit(Request("queued"), &handle);
  EXPECT_EQ(observer_.queue_depth("m"), 1);
  handle.Cancel();
  EXPECT_TRUE(queued->done());  // delivered before Cancel returned, while the worker is busy
  EXPECT_EQ(queued->status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(queued->events(), ElementsAre("queued 0", "done CANCELLED"));
  EXPECT_EQ(observer_.queue_depth("m"), 0);
  handle.Cancel();                      // idempotent
  auto next = Submit(Request("next"));  // the place is free again
  control_.SetManualStepping(false);
  EXPECT_EQ(DoneCode(*running), absl::StatusCode::kOk);
  EXPECT_EQ(DoneCode(*next), absl::StatusCode::kOk);
  for (const auto& run : control_.request_runs()) EXPECT_NE(Prompts(run)[0], "queued");
  EXPECT_EQ(queued->done_count(), 1);
}

TEST_F(EngineTest, CancellingARunningRequestDropsItAtTheNextStepWhileTheBatchGoesOn) {
  EngineOptions options = Options();
  options.models[0].batching.max_batch_size = 2;
  options.models[0].batching.max_queue_delay_micros = 1'000'000;
  Start(options);
  control_.SetManualStepping(true);
  RequestHandle handle;
  auto cancelled = Submit(Request("cancelled", 1), &handle);
  auto kept = Submit(Request("kept", 2));
  ASSERT_TRUE(control_.WaitForBlockedSteps(1));
  control_.AllowSteps(1);  // step 1 runs for both
  ASSERT_TRUE(kept->WaitForEvent("step 1/4"));
  ASSERT_TRUE(control_.WaitForBlockedSteps(1));
  handle.Cancel();
  EXPECT_TRUE(cancelled->done());
  EXPECT_EQ(cancelled->status().code(), absl::StatusCode::kCancelled);
  control_.SetManualStepping(false);
  EXPECT_EQ(DoneCode(*kept), absl::StatusCode::kOk);
  ASSERT_TRUE(control_.WaitForFinishedRuns(1));
  auto runs = control_.request_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_THAT(runs[0].dropped, ElementsAre(0));  // left at the boundary after step 2
  EXPECT_EQ(kept->images().size(), 1u);
  EXPECT_TRUE(cancelled->images().empty());
  EXPECT_THAT(cancelled->events(), ElementsAre("queued 0", "started cpu#0 batch 2 images 0+1",
                                               "step 1/4", "done CANCELLED"));
  EXPECT_EQ(cancelled->violations(), 0);
}

TEST_F(EngineTest, ASinkMayCancelItsOwnRequestFromACallback) {
  class CancellingSink : public RecordingSink {
   public:
    void OnStarted(const StartedEvent& event) override {
      RecordingSink::OnStarted(event);
      handle.Cancel();  // re-entrant: OnDone follows after this callback returns
    }
    RequestHandle handle;
  };
  EngineOptions options = Options();
  options.models[0].batching.max_queue_delay_micros = 1'000'000;
  Start(options);
  auto sink = std::make_shared<CancellingSink>();
  auto admitted = engine_->Submit(Request(), sink);
  ASSERT_TRUE(admitted.ok());
  sink->handle = *admitted;
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(DoneCode(*sink), absl::StatusCode::kCancelled);
  EXPECT_THAT(sink->events(),
              ElementsAre("queued 0", "started cpu#0 batch 1 images 0+1", "done CANCELLED"));
  EXPECT_EQ(sink->violations(), 0);
}

TEST_F(EngineTest, ADeadlineEndsAQueuedRequestWhenItPasses) {
  auto running = StartWithTheWorkerBusy();
  ASSERT_NE(running, nullptr);
  GenerationRequest request = Request("late");
  request.deadline = clock_.Now() + absl::Seconds(1);
  auto late = Submit(request);
  clock_.Advance(absl::Seconds(1));
  auto status = late->WaitForDone();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status->message(), HasSubstr("while queued"));
  EXPECT_FALSE(running->done());  // the worker is still busy with the other batch
  control_.SetManualStepping(false);
  EXPECT_EQ(DoneCode(*running), absl::StatusCode::kOk);
  EXPECT_EQ(control_.request_runs().size(), 1u);
}

TEST_F(EngineTest, ADeadlineEndsARunningRequestAndItLeavesAtTheNextStep) {
  Start(Options());
  control_.SetManualStepping(true);
  GenerationRequest request = Request("late");
  request.deadline = clock_.Now() + absl::Seconds(1);
  auto late = Submit(request);
  ASSERT_TRUE(control_.WaitForBlockedSteps(1));
  clock_.Advance(absl::Seconds(1));
  auto status = late->WaitForDone();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status->message(), HasSubstr("while running"));
  control_.SetManualStepping(false);
  ASSERT_TRUE(control_.WaitForFinishedRuns(1));
  EXPECT_THAT(control_.request_runs()[0].dropped, ElementsAre(0));
  EXPECT_TRUE(late->images().empty());
}

// ---------------------------------------------------------------------------------------------
// Failure isolation

TEST_F(EngineTest, ARunErrorFailsThatBatchOnlyAndTheWorkerServesOn) {
  EngineOptions options = Options();
  options.models[0].batching.max_batch_size = 2;
  options.models[0].batching.max_queue_delay_micros = 1'000'000;
  Start(options);
  control_.FailNextRun("m", absl::ResourceExhaustedError("unet: CUDA out of memory"));
  auto a = Submit(Request("a"));
  auto b = Submit(Request("b"));
  for (auto* sink : {a.get(), b.get()}) {
    auto status = sink->WaitForDone();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(status->message(), HasSubstr("model \"m\" on cpu: unet: CUDA out of memory"));
  }
  auto after = Submit(Request("after"));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(DoneCode(*after), absl::StatusCode::kOk);
  EXPECT_EQ(observer_.done("m:RESOURCE_EXHAUSTED"), 2);
}

TEST_F(EngineTest, AnExceptionFromThePipelineBecomesInternalAndTheWorkerServesOn) {
  Start(Options());
  control_.ThrowOnNextRun("m", "boom in the vae\nException raised from (backtrace)");
  auto failed = Submit(Request("a"));
  auto status = failed->WaitForDone();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status->message(), HasSubstr("exception: boom in the vae"));
  EXPECT_THAT(status->message(), ::testing::Not(HasSubstr("backtrace")));
  control_.ThrowOnNextRun("m", "CUDA out of memory. Tried to allocate 2.00 GiB");
  auto oom = Submit(Request("b"));
  EXPECT_EQ(DoneCode(*oom), absl::StatusCode::kResourceExhausted);
  auto after = Submit(Request("c"));
  EXPECT_EQ(DoneCode(*after), absl::StatusCode::kOk);
}

TEST_F(EngineTest, MissingOrMalformedImagesFailTheRequestAsInternal) {
  Start(Options());
  control_.MisbehaveOnNextRun("m", FakePipelineControl::Misbehaviour::kSkipImages);
  auto missing = Submit(Request("a"));
  auto status = missing->WaitForDone();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status->message(), HasSubstr("decoded 0 of 1 samples"));
  control_.MisbehaveOnNextRun("m", FakePipelineControl::Misbehaviour::kMalformedImages);
  auto malformed = Submit(Request("b"));
  status = malformed->WaitForDone();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status->message(), HasSubstr("encoding image 0"));
  auto after = Submit(Request("c"));
  EXPECT_EQ(DoneCode(*after), absl::StatusCode::kOk);
}

// ---------------------------------------------------------------------------------------------
// Drain

TEST_F(EngineTest, DrainStopsAdmissionAndLetsQueuedAndRunningWorkFinish) {
  EngineOptions options = Options();
  options.models[0].batching.max_batch_size = 2;
  options.models[0].batching.max_queue_delay_micros = 1'000'000;
  Start(options);
  control_.SetManualStepping(true);
  auto running = Submit(Request("running"));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(control_.WaitForBlockedSteps(1));
  auto queued = Submit(Request("queued"));  // a partial batch: drain does not wait for its delay
  absl::Notification drained;
  std::thread drain([&] {
    engine_->Drain(absl::Seconds(30));
    drained.Notify();
  });
  ASSERT_TRUE(Eventually([&] { return !engine_->ready(); }));
  auto refused = engine_->Submit(Request("late"), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("shutting down"));
  EXPECT_FALSE(drained.HasBeenNotified());
  control_.SetManualStepping(false);
  drain.join();
  EXPECT_EQ(running->status().code(), absl::StatusCode::kOk);  // done before Drain returned
  EXPECT_EQ(queued->status().code(), absl::StatusCode::kOk);
  EXPECT_FALSE(engine_->ListModels()[0].ready);
  engine_->Drain(absl::ZeroDuration());  // a second drain returns at once
}

TEST_F(EngineTest, DrainEndsWhatIsLeftWithUnavailableWhenTheGraceExpires) {
  auto running = StartWithTheWorkerBusy();
  ASSERT_NE(running, nullptr);
  auto queued = Submit(Request("queued"));
  std::thread drain([&] { engine_->Drain(absl::Seconds(2)); });
  ASSERT_TRUE(Eventually([&] { return !engine_->ready(); }));
  clock_.Advance(absl::Seconds(1));
  EXPECT_FALSE(running->done());
  clock_.Advance(absl::Seconds(1));
  drain.join();  // returns once both requests have their terminal status
  for (auto* sink : {running.get(), queued.get()}) {
    EXPECT_EQ(sink->done_count(), 1);
    EXPECT_EQ(sink->status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(sink->status().message(), HasSubstr("drain grace period"));
  }
  control_.SetManualStepping(false);
  ASSERT_TRUE(control_.WaitForFinishedRuns(1));
  EXPECT_THAT(control_.request_runs()[0].dropped, ElementsAre(0));
  EXPECT_EQ(control_.request_runs().size(), 1u);  // the queued one never ran
}

TEST_F(EngineTest, DestroyingTheEngineAnswersEveryAcceptedRequest) {
  auto running = StartWithTheWorkerBusy();
  ASSERT_NE(running, nullptr);
  auto queued = Submit(Request("queued"));
  std::thread destroy([&] { engine_.reset(); });  // drain grace 0
  EXPECT_EQ(DoneCode(*running), absl::StatusCode::kUnavailable);
  EXPECT_EQ(DoneCode(*queued), absl::StatusCode::kUnavailable);
  control_.SetManualStepping(false);  // lets the worker reach its next step boundary
  destroy.join();
}

// ---------------------------------------------------------------------------------------------
// Concurrency: exactly one terminal status per accepted request

TEST(EngineStressTest, EveryAcceptedRequestGetsExactlyOneTerminalStatus) {
  FakePipelineControl control;
  RecordingObserver observer;
  EngineOptions options;
  options.devices = {"cpu", "cpu"};
  options.observer = &observer;  // real clock: deadlines race with the workers
  options.drain_grace_micros = 0;
  for (const char* name : {"a", "b"}) {
    ModelOptions model;
    model.spec.name = name;
    model.batching.max_batch_size = 3;
    model.batching.max_queue_delay_micros = 200;
    model.batching.max_queue_size = 1000;
    options.models.push_back(model);
  }
  auto created = Engine::Create(options, control.Factory());
  ASSERT_TRUE(created.ok());
  std::unique_ptr<Engine> engine = *std::move(created);
  ASSERT_TRUE(engine->WaitUntilReady().ok());

  // Six threads submit (cancelling some of their requests at random moments, some with short
  // real deadlines); then two threads keep submitting while the engine drains with a 1 ms
  // grace, so that admission races with drain and some accepted work ends UNAVAILABLE.
  constexpr int kThreads = 8;
  constexpr int kEarlyThreads = 6;
  constexpr int kRequestsPerThread = 40;
  struct Submitted {
    std::shared_ptr<RecordingSink> sink;
    bool accepted = false;
    absl::StatusCode admission = absl::StatusCode::kOk;
  };
  std::vector<std::vector<Submitted>> submitted(kThreads);
  std::atomic<bool> refused_after_drain{false};
  const auto submitter = [&](int t, bool until_refused) {
    std::mt19937 random(t);
    for (int i = 0; until_refused || i < kRequestsPerThread; ++i) {
      GenerationRequest request;
      request.model = random() % 2 ? "a" : "b";
      request.prompt = absl::StrCat("prompt ", t, " ", i);
      request.steps = 2 + static_cast<int>(random() % 2);
      request.num_images = 1 + static_cast<int>(random() % 4);
      request.previews = random() % 4 == 0;
      request.seed = random();
      if (random() % 3 == 0) {
        request.deadline = absl::Now() + absl::Microseconds(random() % 2000);
      }
      auto sink = std::make_shared<RecordingSink>();
      auto handle = engine->Submit(request, sink);
      submitted[t].push_back({sink, handle.ok(), handle.status().code()});
      if (!handle.ok() && handle.status().code() == absl::StatusCode::kUnavailable) {
        refused_after_drain = true;
        return;
      }
      if (handle.ok() && random() % 3 == 0) {
        if (random() % 2) std::this_thread::yield();
        handle->Cancel();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kEarlyThreads; ++t) threads.emplace_back(submitter, t, false);
  for (auto& thread : threads) thread.join();
  threads.clear();
  for (int t = kEarlyThreads; t < kThreads; ++t) threads.emplace_back(submitter, t, true);
  engine->Drain(absl::Milliseconds(1));
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(refused_after_drain);

  int accepted = 0;
  for (const auto& per_thread : submitted) {
    for (const Submitted& s : per_thread) {
      EXPECT_EQ(s.sink->violations(), 0);
      if (!s.accepted) {
        // Refused: a deadline that passed before admission, or the drain.
        EXPECT_TRUE(s.admission == absl::StatusCode::kDeadlineExceeded ||
                    s.admission == absl::StatusCode::kUnavailable)
            << absl::StatusCodeToString(s.admission);
        EXPECT_TRUE(s.sink->events().empty());
        continue;
      }
      ++accepted;
      ASSERT_EQ(s.sink->done_count(), 1);
      const absl::StatusCode code = s.sink->status().code();
      EXPECT_TRUE(code == absl::StatusCode::kOk || code == absl::StatusCode::kCancelled ||
                  code == absl::StatusCode::kDeadlineExceeded ||
                  code == absl::StatusCode::kUnavailable)
          << s.sink->status();
      if (code == absl::StatusCode::kOk) {
        EXPECT_EQ(static_cast<int>(s.sink->images().size()), s.sink->metrics().num_images);
      }
    }
  }
  EXPECT_GT(accepted, kEarlyThreads * kRequestsPerThread / 2);
  EXPECT_EQ(observer.in_flight("a"), 0);
  EXPECT_EQ(observer.in_flight("b"), 0);
  EXPECT_EQ(observer.queue_depth("a"), 0);
  EXPECT_EQ(observer.queue_depth("b"), 0);
  engine.reset();
}

}  // namespace
}  // namespace tlcm::engine

namespace tlcm::engine {
namespace {

// Step-level batching (BatchingMode::kStep) through the fake pipeline.
class StepLevelEngineTest : public EngineTest {
 protected:
  void StartStepLevel(int max_batch_size = 4) {
    EngineOptions options = Options();
    options.models[0].batching.mode = BatchingMode::kStep;
    options.models[0].batching.max_batch_size = max_batch_size;
    Start(options);
  }
  static GenerationRequest Request(const std::string& prompt, uint64_t seed, int steps) {
    GenerationRequest request = EngineTest::Request(prompt, seed);
    request.steps = steps;
    return request;
  }
  bool WaitForStepCalls(size_t count) {
    return Eventually([&] { return control_.step_sets().size() >= count; });
  }
};

TEST_F(StepLevelEngineTest, AShortRequestJoinsARunningOneAtAStepBoundaryAndFinishesFirst) {
  StartStepLevel();
  control_.SetManualStepping(true);
  auto long_sink = Submit(Request("long", 10, 8));
  ASSERT_TRUE(WaitForStepCalls(1));
  auto short_sink = Submit(Request("short", 20, 2));
  control_.AllowSteps(2);  // the long one's first step, then one for both
  ASSERT_TRUE(WaitForStepCalls(3));
  EXPECT_THAT(control_.step_sets()[1],
              ElementsAre(SampleId{1, 0}, SampleId{2, 0}));  // one denoiser call for both
  control_.AllowSteps(1);
  ASSERT_EQ(DoneCode(*short_sink), absl::StatusCode::kOk);
  EXPECT_THAT(short_sink->events(),
              ElementsAre("queued 0", "started cpu#0 batch 2 images 0+1", "step 1/2", "step 2/2",
                          "image 0 seed 20", "done OK"));
  EXPECT_FALSE(long_sink->WaitForDone(absl::Milliseconds(50)).has_value());  // 5 steps to go
  control_.SetManualStepping(false);
  ASSERT_EQ(DoneCode(*long_sink), absl::StatusCode::kOk);
  const std::vector<std::string> events = long_sink->events();
  EXPECT_EQ(events[1], "started cpu#0 batch 1 images 0+1");
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](const std::string& e) { return e.rfind("step ", 0) == 0; }),
            8);
  EXPECT_EQ(events[events.size() - 2], "image 0 seed 10");
}

TEST_F(StepLevelEngineTest, AQueuedShortRequestJoinsBeforeAnOlderLongOne) {
  StartStepLevel(/*max_batch_size=*/1);
  control_.SetManualStepping(true);
  auto first = Submit(Request("first", 1, 2));
  ASSERT_TRUE(WaitForStepCalls(1));  // the set is full while both of the others arrive
  auto long_sink = Submit(Request("long", 2, 8));
  auto short_sink = Submit(Request("short", 3, 2));
  control_.SetManualStepping(false);
  ASSERT_EQ(DoneCode(*long_sink), absl::StatusCode::kOk);
  ASSERT_EQ(control_.step_sets().size(), 12u);
  EXPECT_THAT(control_.step_sets()[2], ElementsAre(SampleId{3, 0}));
  EXPECT_THAT(control_.step_sets()[4], ElementsAre(SampleId{2, 0}));
  EXPECT_EQ(DoneCode(*short_sink), absl::StatusCode::kOk);
}

TEST_F(StepLevelEngineTest, ACancelledSampleLeavesAtTheNextBoundaryAndTheOthersGoOn) {
  StartStepLevel();
  control_.SetManualStepping(true);
  RequestHandle handle;
  auto cancelled = Submit(Request("cancelled", 1, 4), &handle);
  ASSERT_TRUE(WaitForStepCalls(1));
  auto kept = Submit(Request("kept", 2, 2));
  handle.Cancel();
  EXPECT_EQ(DoneCode(*cancelled), absl::StatusCode::kCancelled);
  control_.SetManualStepping(false);
  ASSERT_EQ(DoneCode(*kept), absl::StatusCode::kOk);
  for (size_t call = 1; call < control_.step_sets().size(); ++call) {
    EXPECT_THAT(control_.step_sets()[call], ElementsAre(SampleId{2, 0})) << call;
  }
  EXPECT_EQ(cancelled->events().back(), "done CANCELLED");
}

TEST_F(StepLevelEngineTest, ALargeRequestIsSplitOverStepsAndKeepsItsSeeds) {
  StartStepLevel(/*max_batch_size=*/2);
  auto sink = Submit([] {
    GenerationRequest request = Request("many", 100, 2);
    request.num_images = 5;
    return request;
  }());
  ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  std::set<uint64_t> seeds;
  for (const GeneratedImage& image : sink->images()) {
    auto decoded = DecodePng(image.data);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(testing::SeedOfFakeImage(*decoded), image.seed);
    seeds.insert(image.seed);
  }
  EXPECT_THAT(seeds, ElementsAre(100, 101, 102, 103, 104));
  EXPECT_EQ(control_.largest_batch(), 2);
}

TEST_F(StepLevelEngineTest, AFailedStepFailsItsSetAndTheEngineGoesOn) {
  StartStepLevel();
  control_.FailNextRun("m", absl::ResourceExhaustedError("unet: CUDA out of memory"));
  auto failed = Submit(Request("a", 1, 2));
  ASSERT_EQ(DoneCode(*failed), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(failed->WaitForDone()->message()),
              HasSubstr("model \"m\" on cpu: unet: CUDA out of memory"));
  auto next = Submit(Request("b", 2, 2));
  EXPECT_EQ(DoneCode(*next), absl::StatusCode::kOk);
}

TEST_F(StepLevelEngineTest, PreviewsFollowEachStepButTheLast) {
  StartStepLevel();
  GenerationRequest request = Request("p", 5, 3);
  request.previews = true;
  auto sink = Submit(request);
  ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  EXPECT_THAT(sink->events(), ElementsAre("queued 0", "started cpu#0 batch 1 images 0+1",
                                          "step 1/3", "preview 0 @1", "step 2/3", "preview 0 @2",
                                          "step 3/3", "image 0 seed 5", "done OK"));
}

}  // namespace
}  // namespace tlcm::engine
