// The engine over the real tiny SDXL and FLUX pipelines (tests/data/sdxl-tiny, flux-tiny, with
// their TLCM LoRA) on two CPU workers: batching by key and up to max_batch_size, splitting with
// seeds kept, cancellation queued and mid-batch, deadlines, a full queue, drain, and seed
// invariance: an image depends only on (prompt, seed, steps, size), not on the batch it ran in.
//
// Batches form deterministically without timing: both workers are first held by "blocker"
// requests whose Run waits at a gate in front of the real pipeline, so that what is submitted
// next queues and batches; opening the gate lets it run.
//
// Tolerances: an image is the same alone and anywhere in a batch to within one uint8 level per
// channel and a mean |difference| of at most 0.05 levels (batched float sums may round
// differently), as the pipeline tests state; against diffusers' golden PNGs the pipelines'
// tolerance applies (mean <= 0.5, max <= 3 levels).
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engine/engine.h"
#include "engine/whole_batch.h"
#include "image/png_codec.h"
#include "pipelines/pipeline_factory.h"
#include "schedulers/strength.h"
#include "tests/engine/recording_sink.h"
#include "tests/pipelines/golden_runs.h"

namespace tlcm::engine {
namespace {

using ::testing::HasSubstr;
using testing::RecordingObserver;
using testing::RecordingSink;
using ::tlcm::testing::DataPath;

constexpr double kSameMeanLevels = 0.05;
constexpr int kSameMaxLevels = 1;
constexpr double kGoldenMeanLevels = 0.5;
constexpr int kGoldenMaxLevels = 3;
constexpr int kMaxBatchSize = 4;
constexpr int kMaxQueueSize = 6;

// A test case's model and the golden run the tests reproduce: its first run with 2 steps and the
// LoRA (one prompt, one seed).
struct Case {
  std::string name;
  ModelSpec spec;
  tlcm::testing::GoldenRun golden;
};

Case LoadCase(const std::string& name) {
  Case c;
  c.name = name;
  for (const auto& run : tlcm::testing::LoadGoldenRuns(name)) {
    if (run.steps == 2 && run.lora_scale > 0 && run.seeds.size() == 1) {
      c.golden = run;
      break;
    }
  }
  EXPECT_FALSE(c.golden.name.empty()) << name << ": no 2-step LoRA golden run";
  c.spec.name = name;
  c.spec.base_model_path = DataPath(name + "/model");
  c.spec.lora_path = DataPath(name + "/lora");
  c.spec.max_sequence_length = c.golden.max_sequence_length;
  c.spec.default_width = c.golden.width;
  c.spec.default_height = c.golden.height;
  c.spec.default_steps = 2;
  c.spec.adapter_folder = DataPath(name + "/styles");
  return c;
}

constexpr char kBlockerPrompt[] = "a blocker";

// Holds every Run of a batch whose first prompt is kBlockerPrompt on its worker thread until
// released. Thread-safe.
class WorkerGate {
 public:
  void Enter() {
    absl::MutexLock lock(&mu_);
    ++blocked_;
    mu_.Await(absl::Condition(&released_));
  }
  bool WaitForBlocked(int count) {
    absl::MutexLock lock(&mu_);
    const auto enough = [this, count] {
      mu_.AssertHeld();
      return blocked_ >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }

 private:
  absl::Mutex mu_;
  int blocked_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

// A real pipeline behind a WorkerGate.
class GatedPipeline : public Pipeline {
 public:
  GatedPipeline(std::unique_ptr<Pipeline> pipeline, WorkerGate* gate)
      : pipeline_(std::move(pipeline)), gate_(gate) {}
  const ModelInfo& info() const override { return pipeline_->info(); }
  DeviceMemory MemoryUsage() const override { return pipeline_->MemoryUsage(); }
  std::vector<std::string> AdapterNames() const override { return pipeline_->AdapterNames(); }
  absl::Status PrepareAdapters(const std::vector<LoraChoice>& loras) override {
    return pipeline_->PrepareAdapters(loras);
  }
  std::optional<AdapterCacheStats> AdapterStats() const override {
    return pipeline_->AdapterStats();
  }
  absl::StatusOr<StageTimings> Start(int width, int height,
                                     const std::vector<SampleSpec>& samples) override {
    if (!samples.empty() && samples[0].job.prompt == kBlockerPrompt) gate_->Enter();
    return pipeline_->Start(width, height, samples);
  }
  absl::StatusOr<StageTimings> Step(const std::vector<SampleId>& set,
                                    const std::function<bool()>& interrupt) override {
    return pipeline_->Step(set, interrupt);
  }
  absl::StatusOr<RgbImage> Preview(const SampleId& sample) override {
    return pipeline_->Preview(sample);
  }
  absl::StatusOr<StageTimings> Decode(const std::vector<SampleId>& samples,
                                      std::vector<RgbImage>* images) override {
    return pipeline_->Decode(samples, images);
  }
  void Release(const std::vector<SampleId>& samples) override { pipeline_->Release(samples); }

 private:
  std::unique_ptr<Pipeline> pipeline_;
  WorkerGate* const gate_;
};

// Cancels its own request at its first step.
class CancelAtFirstStepSink : public RecordingSink {
 public:
  void SetHandle(RequestHandle handle) { handle_ = handle; }  // before the request can start
  void OnStep(const StepEvent& event) override {
    RecordingSink::OnStep(event);
    handle_.Cancel();
  }

 private:
  RequestHandle handle_;
};

class EngineRealPipelinesTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    case_ = LoadCase(GetParam());
    SetComputeThreads(1);  // one intra-op thread per worker: the two workers share two cores
  }

  void TearDown() override {
    gate_.Release();  // nothing may stay held, or the engine could not stop
    engine_.reset();
  }

  void Start() {
    EngineOptions options;
    options.devices = {"cpu", "cpu"};
    options.drain_grace_micros = 60'000'000;
    options.observer = &observer_;
    ModelOptions model;
    model.spec = case_.spec;
    model.batching.max_batch_size = kMaxBatchSize;
    model.batching.max_queue_delay_micros = 0;  // batches form behind the blockers
    model.batching.max_queue_size = kMaxQueueSize;
    model.warmup_steps = 2;
    options.models.push_back(model);
    auto factory = [this](const ModelSpec& spec,
                          const std::string& device) -> absl::StatusOr<std::unique_ptr<Pipeline>> {
      auto pipeline = CreatePipeline(spec, device);
      if (!pipeline.ok()) return pipeline.status();
      return std::make_unique<GatedPipeline>(*std::move(pipeline), &gate_);
    };
    auto engine = Engine::Create(std::move(options), factory);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_TRUE(engine_->WaitUntilReady().ok()) << engine_->WaitUntilReady();
  }

  // The golden run's request (prompt, seed, 2 steps, size, guidance), with `seed` when given.
  GenerationRequest GoldenRequest() const {
    GenerationRequest request;
    request.model = case_.spec.name;
    request.prompt = case_.golden.prompts[0];
    request.seed = case_.golden.seeds[0];
    request.steps = case_.golden.steps;
    request.width = case_.golden.width;
    request.height = case_.golden.height;
    request.guidance_scale = case_.golden.guidance_scale;
    request.sampler = case_.golden.scheduler;
    return request;
  }
  GenerationRequest Request(const std::string& prompt, uint64_t seed, int num_images = 1) const {
    GenerationRequest request = GoldenRequest();
    request.prompt = prompt;
    request.seed = seed;
    request.num_images = num_images;
    return request;
  }

  template <typename Sink = RecordingSink>
  std::shared_ptr<Sink> Submit(GenerationRequest request, RequestHandle* handle = nullptr) {
    auto sink = std::make_shared<Sink>();
    auto admitted = engine_->Submit(std::move(request), sink);
    EXPECT_TRUE(admitted.ok()) << admitted.status();
    if (admitted.ok() && handle != nullptr) *handle = *admitted;
    return sink;
  }

  // Occupies both workers with one blocker request each (3 steps: a key of its own), held in
  // their pipelines' Run, so that what is submitted next queues up. Once per test.
  void HoldWorkers() {
    for (int worker = 0; worker < 2; ++worker) {
      GenerationRequest blocker = Request(kBlockerPrompt, 1000 + worker);
      blocker.steps = 3;
      blockers_.push_back(Submit(blocker));
      // Running (and so off the queue) before the next one comes: one per worker.
      ASSERT_TRUE(gate_.WaitForBlocked(worker + 1));
    }
  }
  void ReleaseWorkers() {
    gate_.Release();
    for (auto& blocker : blockers_) EXPECT_EQ(DoneCode(*blocker), absl::StatusCode::kOk);
  }

  static absl::StatusCode DoneCode(RecordingSink& sink) {
    auto status = sink.WaitForDone(absl::Seconds(120));
    EXPECT_TRUE(status.has_value()) << "no terminal status";
    return status.has_value() ? status->code() : absl::StatusCode::kUnknown;
  }

  // Image `index` of a finished request, decoded.
  static RgbImage ImageOf(const RecordingSink& sink, int index) {
    for (const GeneratedImage& image : sink.images()) {
      if (image.index != index) continue;
      auto decoded = DecodePng(image.data);
      EXPECT_TRUE(decoded.ok()) << decoded.status();
      return decoded.ok() ? *decoded : RgbImage{};
    }
    ADD_FAILURE() << "no image " << index;
    return RgbImage{};
  }

  // The batch sizes the request's images ran in ("started" events), in order.
  static std::vector<std::string> Starts(const RecordingSink& sink) {
    std::vector<std::string> out;
    for (const std::string& event : sink.events()) {
      if (event.rfind("started ", 0) == 0) out.push_back(event.substr(event.find(" batch ") + 1));
    }
    return out;
  }

  RgbImage GoldenImage() const {
    return tlcm::testing::ReadPng(DataPath(case_.name + "/golden/" + case_.golden.images[0]));
  }

  Case case_;
  WorkerGate gate_;  // outlives the engine's pipelines
  RecordingObserver observer_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::shared_ptr<RecordingSink>> blockers_;
};

TEST_P(EngineRealPipelinesTest, ImagesDependOnlyOnPromptSeedStepsAndSize) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const uint64_t seed = case_.golden.seeds[0];

  // Alone: the golden run's request, and the same prompt with seed + 5.
  auto alone = Submit(GoldenRequest());
  ASSERT_EQ(DoneCode(*alone), absl::StatusCode::kOk);
  EXPECT_THAT(Starts(*alone), ::testing::ElementsAre("batch 1 images 0+1"));
  auto alone_5 = Submit(Request(case_.golden.prompts[0], seed + 5));
  ASSERT_EQ(DoneCode(*alone_5), absl::StatusCode::kOk);
  const RgbImage alone_image = ImageOf(*alone, 0);
  EXPECT_TRUE(
      tlcm::testing::ImagesClose(alone_image, GoldenImage(), kGoldenMeanLevels, kGoldenMaxLevels))
      << case_.golden.images[0];

  // Behind the blockers: a mixed batch of 4 images (other prompts and seeds around the golden
  // request), a request of another key (4 steps) that must not join it, and a request of 6
  // images that is split into 4 + 2 (its first chunk waits for the next batch, as the mixed one
  // is full).
  ASSERT_NO_FATAL_FAILURE(HoldWorkers());
  auto before = Submit(Request("A red fox, sitting in fresh snow!", 5));
  auto target = Submit(GoldenRequest());
  auto after = Submit(Request("photo of an old lighthouse at dawn, soft light", 9, 2));
  GenerationRequest other_key_request = Request("A red fox, sitting in fresh snow!", 5);
  other_key_request.steps = 4;
  auto other_key = Submit(other_key_request);
  auto split = Submit(Request(case_.golden.prompts[0], seed, 6));
  ReleaseWorkers();
  for (auto* sink : {before.get(), target.get(), after.get(), other_key.get(), split.get()}) {
    ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
    EXPECT_EQ(sink->violations(), 0);
  }

  // Batching: one batch of 4 for the mixed requests, the 4-step request alone, the split request
  // in chunks of 4 and 2 with image i seeded seed + i.
  EXPECT_THAT(Starts(*before), ::testing::ElementsAre("batch 4 images 0+1"));
  EXPECT_THAT(Starts(*target), ::testing::ElementsAre("batch 4 images 0+1"));
  EXPECT_THAT(Starts(*after), ::testing::ElementsAre("batch 4 images 0+2"));
  EXPECT_THAT(Starts(*other_key), ::testing::ElementsAre("batch 1 images 0+1"));
  EXPECT_THAT(Starts(*split),
              ::testing::UnorderedElementsAre("batch 4 images 0+4", "batch 2 images 4+2"));
  EXPECT_EQ(split->metrics().num_batches, 2);
  ASSERT_EQ(split->images().size(), 6u);
  for (const GeneratedImage& image : split->images()) EXPECT_EQ(image.seed, seed + image.index);

  // Seed invariance: the golden request's image is the same alone, in the mixed batch (second of
  // four), first in the split's first chunk, and seed + 5 second in its second chunk.
  EXPECT_TRUE(tlcm::testing::ImagesClose(ImageOf(*target, 0), alone_image, kSameMeanLevels,
                                         kSameMaxLevels));
  EXPECT_TRUE(
      tlcm::testing::ImagesClose(ImageOf(*split, 0), alone_image, kSameMeanLevels, kSameMaxLevels));
  EXPECT_TRUE(tlcm::testing::ImagesClose(ImageOf(*split, 5), ImageOf(*alone_5, 0), kSameMeanLevels,
                                         kSameMaxLevels));
  // ... and the images really differ where prompt or seed differ.
  EXPECT_FALSE(
      tlcm::testing::ImagesClose(ImageOf(*split, 1), alone_image, kSameMeanLevels, kSameMaxLevels));
  EXPECT_FALSE(tlcm::testing::ImagesClose(ImageOf(*before, 0), ImageOf(*other_key, 0),
                                          kSameMeanLevels, kSameMaxLevels));

  // Both CPU workers reported the process's resident set after their runs; CUDA's kinds stay
  // unmeasured.
  const auto memory = observer_.device_memory();
  EXPECT_EQ(memory.size(), 2u);
  for (const auto& [worker, m] : memory) {
    EXPECT_GT(m.resident_bytes, int64_t{1} << 20) << worker;
    EXPECT_EQ(m.allocated_bytes, -1) << worker;
    EXPECT_EQ(m.reserved_bytes, -1) << worker;
  }
}

// Style adapters per request: one batch mixes requests with different adapter sets and one
// without; each gets diffusers' image of its run (golden/styles, made on the same prompt, seed
// and size as the golden run). Unknown adapters and bad entries are refused at admission.
TEST_P(EngineRealPipelinesTest, StyleAdaptersPerRequestShareABatch) {
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_THAT(engine_->Adapters(case_.spec.name), ::testing::ElementsAre("clay", "ink"));
  const auto styles = tlcm::testing::LoadGoldenRuns(case_.name, "golden/styles");
  ASSERT_GE(styles.size(), 3u);
  ASSERT_EQ(styles[0].seeds[0], case_.golden.seeds[0]);

  GenerationRequest unknown = GoldenRequest();
  unknown.loras = {{"ink", 1.0f}, {"no-such-style", 1.0f}};
  auto refused = engine_->Submit(unknown, std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("'no-such-style'"));
  GenerationRequest too_strong = GoldenRequest();
  too_strong.loras = {{"ink", 100.0f}};
  refused = engine_->Submit(too_strong, std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("loras[0].scale"));

  ASSERT_NO_FATAL_FAILURE(HoldWorkers());
  std::vector<std::shared_ptr<RecordingSink>> styled;
  for (size_t i = 0; i < 3; ++i) {
    GenerationRequest request = GoldenRequest();
    for (const auto& [name, scale] : styles[i].loras) request.loras.push_back({name, scale});
    styled.push_back(Submit(request));
  }
  auto plain = Submit(GoldenRequest());
  ReleaseWorkers();
  for (size_t i = 0; i < styled.size(); ++i) {
    ASSERT_EQ(DoneCode(*styled[i]), absl::StatusCode::kOk);
    EXPECT_THAT(Starts(*styled[i]), ::testing::ElementsAre("batch 4 images 0+1"));
    const RgbImage expected =
        tlcm::testing::ReadPng(DataPath(case_.name + "/golden/styles/" + styles[i].images[0]));
    EXPECT_TRUE(tlcm::testing::ImagesClose(ImageOf(*styled[i], 0), expected, kGoldenMeanLevels,
                                           kGoldenMaxLevels))
        << styles[i].name;
  }
  ASSERT_EQ(DoneCode(*plain), absl::StatusCode::kOk);
  EXPECT_TRUE(tlcm::testing::ImagesClose(ImageOf(*plain, 0), GoldenImage(), kGoldenMeanLevels,
                                         kGoldenMaxLevels));
}

TEST_P(EngineRealPipelinesTest, CancelledRequestsLeaveTheQueueOrTheirBatch) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(HoldWorkers());
  // Queued: ends at once, never starts.
  RequestHandle queued_handle;
  auto queued = Submit(Request("a queued request", 3), &queued_handle);
  queued_handle.Cancel();
  EXPECT_EQ(DoneCode(*queued), absl::StatusCode::kCancelled);
  // Mid-batch: cancelled at its first step; its batch mate goes on unchanged.
  RequestHandle cancelled_handle;
  auto cancelled = Submit<CancelAtFirstStepSink>(Request("to be cancelled", 4), &cancelled_handle);
  cancelled->SetHandle(cancelled_handle);
  auto mate = Submit(GoldenRequest());
  ReleaseWorkers();
  EXPECT_EQ(DoneCode(*cancelled), absl::StatusCode::kCancelled);
  ASSERT_EQ(DoneCode(*mate), absl::StatusCode::kOk);

  EXPECT_THAT(Starts(*queued), ::testing::IsEmpty());
  EXPECT_THAT(queued->events(), ::testing::ElementsAre("queued 0", "done CANCELLED"));
  EXPECT_THAT(Starts(*cancelled), ::testing::ElementsAre("batch 2 images 0+1"));
  EXPECT_TRUE(cancelled->images().empty());
  EXPECT_EQ(cancelled->violations(), 0);
  EXPECT_THAT(Starts(*mate), ::testing::ElementsAre("batch 2 images 0+1"));
  EXPECT_TRUE(tlcm::testing::ImagesClose(ImageOf(*mate, 0), GoldenImage(), kGoldenMeanLevels,
                                         kGoldenMaxLevels));
}

TEST_P(EngineRealPipelinesTest, DeadlinesAndAFullQueueAreRefusedOrEnded) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(HoldWorkers());
  GenerationRequest late = GoldenRequest();
  late.deadline = absl::Now() + absl::Milliseconds(100);
  auto expired = Submit(late);
  EXPECT_EQ(DoneCode(*expired), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(expired->status().message(), HasSubstr("queued"));
  late.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_EQ(engine_->Submit(late, std::make_shared<RecordingSink>()).status().code(),
            absl::StatusCode::kDeadlineExceeded);

  std::vector<std::shared_ptr<RecordingSink>> waiting;
  for (int i = 0; i < kMaxQueueSize; ++i) waiting.push_back(Submit(Request("waiting", 20 + i)));
  auto refused = engine_->Submit(Request("one too many", 30), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  ReleaseWorkers();
  for (auto& sink : waiting) EXPECT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
}

TEST_P(EngineRealPipelinesTest, DrainFinishesAcceptedRequestsAndRefusesNewOnes) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(HoldWorkers());
  auto queued = Submit(GoldenRequest());
  std::thread drain([this] { engine_->Drain(absl::Seconds(60)); });
  for (int i = 0; i < 10000 && engine_->ready(); ++i) absl::SleepFor(absl::Milliseconds(1));
  auto refused = engine_->Submit(GoldenRequest(), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  ReleaseWorkers();
  drain.join();
  ASSERT_EQ(DoneCode(*queued), absl::StatusCode::kOk);
  EXPECT_TRUE(tlcm::testing::ImagesClose(ImageOf(*queued, 0), GoldenImage(), kGoldenMeanLevels,
                                         kGoldenMaxLevels));
}

INSTANTIATE_TEST_SUITE_P(Cases, EngineRealPipelinesTest,
                         ::testing::Values("sdxl-tiny", "flux-tiny"), [](const auto& info) {
                           std::string name = info.param;
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

// A picture for image inputs: a diagonal gradient (value `v` scales it), or with `mask` its left
// half white (repaint) and its right half black.
std::shared_ptr<const RgbImage> Picture(int width, int height, int v, bool mask = false) {
  auto image = std::make_shared<RgbImage>();
  image->width = width;
  image->height = height;
  image->pixels.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int ch = 0; ch < 3; ++ch) {
        image->pixels[(static_cast<size_t>(y) * width + x) * 3 + ch] =
            mask ? (x < width / 2 ? 255 : 0)
                 : static_cast<uint8_t>((v * (x + 2 * y) + 60 * ch) % 256);
      }
    }
  }
  return image;
}

// Step-level batching over the real pipelines: requests of 2, 3 and 4 steps (SDXL: with both
// samplers), img2img and inpainting among them, submitted together join running sets at step
// boundaries and share denoiser calls (an image input is a sample that joins later in its
// schedule); every image matches the same request run alone through the pipeline.
TEST_P(EngineRealPipelinesTest, StepLevelMixesStepCountsAndEachImageStaysTheSame) {
  const Case& c = case_;
  EngineOptions options;
  options.devices = {"cpu"};
  options.observer = &observer_;
  ModelOptions model;
  model.spec = c.spec;
  model.batching.mode = BatchingMode::kStep;
  model.batching.max_batch_size = kMaxBatchSize;
  model.warmup = false;
  options.models.push_back(model);
  auto engine = Engine::Create(options, CreatePipeline);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_TRUE((*engine)->WaitUntilReady().ok());
  const bool sdxl = GetParam() == "sdxl-tiny";
  struct Mix {
    int steps;
    std::string sampler;
    double strength = 0;  // > 0: img2img from Picture(), at this strength
    bool masked = false;  // with strength: inpainting with Picture(.., mask)
  };
  // The image inputs come second and third, so that they join the set the first one opened.
  const std::vector<Mix> mix = {
      {4, sdxl ? "lcm" : ""},  {4, sdxl ? "tlcm" : "", 0.5}, {4, sdxl ? "lcm" : "", 0.75, true},
      {2, sdxl ? "tlcm" : ""}, {3, sdxl ? "lcm" : ""},       {2, sdxl ? "lcm" : ""},
      {4, sdxl ? "tlcm" : ""}};
  const int width = c.golden.width, height = c.golden.height;
  const auto picture = [&](size_t i) { return Picture(width, height, static_cast<int>(i) + 1); };
  const auto mask = Picture(width, height, 0, true);
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (size_t i = 0; i < mix.size(); ++i) {
    GenerationRequest request = Request(absl::StrCat("a lighthouse, picture ", i), 40 + i);
    request.steps = mix[i].steps;
    request.sampler = mix[i].sampler;
    if (mix[i].strength > 0) {
      request.image = picture(i);
      request.strength = mix[i].strength;
      if (mix[i].masked) request.mask = mask;
    }
    sinks.push_back(std::make_shared<RecordingSink>());
    ASSERT_TRUE((*engine)->Submit(request, sinks.back()).ok());
  }
  for (auto& sink : sinks) ASSERT_EQ(DoneCode(*sink), absl::StatusCode::kOk);
  int largest_set = 0;
  for (const BatchReport& report : observer_.batches()) {
    largest_set = std::max(largest_set, report.batch_size);
  }
  EXPECT_GT(largest_set, 1);  // the requests did share denoiser calls

  auto pipeline = CreatePipeline(c.spec, "cpu");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const ModelInfo& info = (*pipeline)->info();
  for (size_t i = 0; i < mix.size(); ++i) {
    SCOPED_TRACE(i);
    BatchKey key{c.name, mix[i].steps, width, height,
                 mix[i].sampler.empty() ? info.samplers.front() : mix[i].sampler};
    ImageJob job{absl::StrCat("a lighthouse, picture ", i), "", 40 + i, c.golden.guidance_scale};
    if (mix[i].strength > 0) {
      // Shared its set with other samples, and ran only its part of the schedule.
      EXPECT_THAT(Starts(*sinks[i]),
                  ::testing::Not(::testing::Contains(::testing::StartsWith("batch 1 "))));
      const int start = StartStep(info.family, mix[i].steps, mix[i].strength);
      EXPECT_THAT(sinks[i]->events(),
                  ::testing::Contains(absl::StrCat("step ", start + 1, "/", mix[i].steps)));
      EXPECT_THAT(
          sinks[i]->events(),
          ::testing::Not(::testing::Contains(absl::StrCat("step ", start, "/", mix[i].steps))));
      key.strength = mix[i].strength;
      key.masked = mix[i].masked;
      job.image = picture(i);
      if (mix[i].masked) job.mask = mask;
    }
    absl::StatusOr<WholeBatch> alone = RunWholeBatch(**pipeline, key, {job});
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_TRUE(tlcm::testing::ImagesClose(ImageOf(*sinks[i], 0), alone->images[0], kSameMeanLevels,
                                           kSameMaxLevels));
  }
  // The image inputs changed the picture: the inpainted request differs from its prompt and seed
  // without them.
  absl::StatusOr<WholeBatch> plain =
      RunWholeBatch(**pipeline,
                    {c.name, mix[2].steps, width, height,
                     mix[2].sampler.empty() ? info.samplers.front() : mix[2].sampler},
                    {{"a lighthouse, picture 2", "", 42, c.golden.guidance_scale}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(tlcm::testing::ImagesClose(ImageOf(*sinks[2], 0), plain->images[0], kSameMeanLevels,
                                          kSameMaxLevels));
}

}  // namespace
}  // namespace tlcm::engine
