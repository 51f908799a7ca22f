// Generate end to end: event order and content, images, seeds, validation, admission errors,
// cancellation and deadlines, over a real server on a loopback port.
#include <functional>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "image/png_codec.h"
#include "image/png_writer.h"
#include "tests/server/test_server.h"

namespace tlcm::testing {
namespace {

using tlcm::v1::GenerateRequest;
using tlcm::v1::GenerateResponse;

TEST(GenerateTest, StreamsEventsInOrder) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  GenerateRequest request = SimpleRequest();
  request.set_request_id("order-1");
  auto result = client->GenerateBlocking(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(EventKinds(result.events), "queued started step step step step image metrics");
  for (const auto& event : result.events) EXPECT_EQ(event.request_id(), "order-1");

  const auto& started = result.events[1].started();
  EXPECT_EQ(started.device(), "cpu");
  EXPECT_GE(started.batch_size(), 1);
  EXPECT_EQ(started.first_image(), 0);
  EXPECT_EQ(started.num_images(), 1);
  for (int k = 1; k <= 4; ++k) {
    const auto& step = result.events[1 + k].step();
    EXPECT_EQ(step.step(), k);
    EXPECT_EQ(step.total_steps(), 4);
  }
  const auto& metrics = result.metrics;
  EXPECT_EQ(metrics.steps(), 4);
  EXPECT_EQ(metrics.width(), 64);
  EXPECT_EQ(metrics.height(), 64);
  EXPECT_EQ(metrics.num_images(), 1);
  EXPECT_EQ(metrics.num_batches(), 1);
  EXPECT_EQ(metrics.device(), "cpu");
  EXPECT_EQ(metrics.seed(), 42u);
  EXPECT_GT(metrics.total_ms(), 0);
  EXPECT_GE(metrics.total_ms(), metrics.queue_ms());
  EXPECT_GT(metrics.denoise_ms(), 0);
}

TEST(GenerateTest, ImageInputsAreDecodedAndChecked) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  const auto png = [](int width, int height) {
    return *EncodePng(
        RgbImage{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3, 90)});
  };
  GenerateRequest request = SimpleRequest();
  request.clear_width();
  request.clear_height();
  request.set_image(png(48, 41));
  request.set_strength(0.5);
  auto result = client->GenerateBlocking(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.images.size(), 1u);
  EXPECT_EQ(result.images[0].width(), 48);  // the image's size, down to the size multiple
  EXPECT_EQ(result.images[0].height(), 40);

  // A PNG header declaring 30000 x 30000 pixels over a few bytes: refused from the header.
  const std::string bomb(
      "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x75"
      "\x30\x00\x00\x75\x30\x08\x02\x00\x00\x00\xe9\x45\x6f\xed\x00\x00\x00\x0b\x49"
      "\x44\x41\x54\x78\x9c\x63\x60\xc0\x0b\x00\x00\x1f\x00\x01\x80\xfd\x43\xda\x00"
      "\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
      68);
  const std::vector<std::tuple<std::function<void(GenerateRequest&)>, std::string>> cases = {
      {[](GenerateRequest& r) { r.set_image("not a picture"); }, "image: "},
      {[&](GenerateRequest& r) { r.set_image(bomb); }, "image: 30000x30000 PNG exceeds"},
      {[&](GenerateRequest& r) { r.set_mask(png(48, 40)); }, "mask: 48x40 differs"},
      {[](GenerateRequest& r) { r.set_strength(1.5); }, "strength: 1.5 is outside (0, 1]"},
      {[](GenerateRequest& r) { r.clear_image(); }, "strength: needs an image"},
  };
  for (const auto& [change, message] : cases) {
    GenerateRequest bad = request;
    change(bad);
    auto refused = client->GenerateBlocking(bad);
    EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << message;
    EXPECT_EQ(refused.status.error_message().substr(0, message.size()), message)
        << refused.status.error_message();
  }
}

// Image bytes travel in the request: above max_receive_message_bytes gRPC refuses the call
// (RESOURCE_EXHAUSTED) before it reaches the service; below it the bytes are decoded and checked.
TEST(GenerateTest, ImageBytesCountAgainstTheMaximumRequestSize) {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.set_max_receive_message_bytes(64 * 1024);
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  GenerateRequest request = SimpleRequest();
  request.set_image(std::string(60 * 1024, 'x'));
  auto under = client->GenerateBlocking(request);
  EXPECT_EQ(under.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(under.status.error_message().substr(0, 7), "image: ") << under.status.error_message();
  request.set_image(std::string(65 * 1024, 'x'));
  auto over = client->GenerateBlocking(request);
  EXPECT_EQ(over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << over.status.error_message();
}

TEST(GenerateTest, AssignsRequestIdWhenEmpty) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto result = server.NewClient()->GenerateBlocking(SimpleRequest());
  ASSERT_TRUE(result.status.ok());
  ASSERT_FALSE(result.request_id.empty());
  for (const auto& event : result.events) EXPECT_EQ(event.request_id(), result.request_id);
}

TEST(GenerateTest, ImagesDecodeWithDeclaredSizeAndExpectedPixels) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  GenerateRequest request = SimpleRequest("pixels");
  request.set_width(96);
  request.set_height(40);
  request.set_num_images(3);
  auto result = server.NewClient()->GenerateBlocking(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.images.size(), 3u);
  std::map<int, tlcm::v1::Image> by_index;
  for (const auto& image : result.images) by_index[image.index()] = image;
  ASSERT_EQ(by_index.size(), 3u);
  for (const auto& [index, image] : by_index) {
    EXPECT_EQ(image.format(), tlcm::v1::IMAGE_FORMAT_PNG);
    EXPECT_EQ(image.width(), 96);
    EXPECT_EQ(image.height(), 40);
    EXPECT_EQ(image.seed(), 42u + index);
    auto decoded = DecodePng(image.data());
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->width, 96);
    EXPECT_EQ(decoded->height, 40);
    EXPECT_EQ(decoded->pixels, FakeImage(42u + index, "pixels", 96, 40).pixels);
  }
}

TEST(GenerateTest, JpegAndWebpAreEncodedAsAsked) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  GenerateRequest request = SimpleRequest();
  request.set_format(tlcm::v1::IMAGE_FORMAT_JPEG);
  request.set_quality(80);
  auto jpeg = client->GenerateBlocking(request);
  ASSERT_TRUE(jpeg.status.ok()) << jpeg.status.error_message();
  ASSERT_EQ(jpeg.images.size(), 1u);
  EXPECT_EQ(jpeg.images[0].format(), tlcm::v1::IMAGE_FORMAT_JPEG);
  EXPECT_EQ(jpeg.images[0].data().substr(0, 3), std::string("\xFF\xD8\xFF"));

  request.set_format(tlcm::v1::IMAGE_FORMAT_WEBP);
  auto webp = client->GenerateBlocking(request);
  ASSERT_TRUE(webp.status.ok()) << webp.status.error_message();
  ASSERT_EQ(webp.images.size(), 1u);
  EXPECT_EQ(webp.images[0].data().substr(0, 4), "RIFF");
  EXPECT_EQ(webp.images[0].data().substr(8, 4), "WEBP");
}

TEST(GenerateTest, PreviewsFollowEachStepButTheLastWhenAsked) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  GenerateRequest request = SimpleRequest();
  request.set_stream_previews(true);
  auto result = server.NewClient()->GenerateBlocking(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(EventKinds(result.events),
            "queued started step preview step preview step preview step image metrics");
  for (const auto& event : result.events) {
    if (!event.has_preview()) continue;
    auto decoded = DecodePng(event.preview().data());
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded->width, event.preview().width());
    EXPECT_EQ(decoded->height, event.preview().height());
  }
}

TEST(GenerateTest, RequestLargerThanBatchIsSplitAndKeepsSeeds) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  GenerateRequest request = SimpleRequest("split");
  request.set_num_images(6);  // max_batch_size 4
  request.set_seed(1000);
  auto result = server.NewClient()->GenerateBlocking(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  int started = 0;
  for (const auto& event : result.events) started += event.has_started();
  EXPECT_EQ(started, 2);
  EXPECT_EQ(result.metrics.num_batches(), 2);
  ASSERT_EQ(result.images.size(), 6u);
  std::map<int, uint64_t> seeds;
  for (const auto& image : result.images) seeds[image.index()] = image.seed();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(seeds[i], 1000u + i);
  EXPECT_LE(server.control().largest_batch(), 4);
}

// The same seed gives the same bytes alone and inside concurrent, mixed batches.
TEST(GenerateTest, SeedGivesSameImageAloneAndUnderConcurrentLoad) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  GenerateRequest alone = SimpleRequest("seeded");
  alone.set_seed(777);
  auto reference = client->GenerateBlocking(alone);
  ASSERT_TRUE(reference.status.ok());
  ASSERT_EQ(reference.images.size(), 1u);

  constexpr int kCalls = 12;
  std::vector<std::future<client::GenerateResult>> futures;
  for (int i = 0; i < kCalls; ++i) {
    GenerateRequest request = SimpleRequest(i % 2 == 0 ? "seeded" : "other prompt");
    request.set_seed(i % 3 == 0 ? 777 : 5000 + i);
    request.set_num_images(1 + i % 2);
    futures.push_back(std::async(std::launch::async,
                                 [&client, request] { return client->GenerateBlocking(request); }));
  }
  int compared = 0;
  for (int i = 0; i < kCalls; ++i) {
    auto result = futures[i].get();
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    for (const auto& image : result.images) {
      if (i % 2 == 0 && image.seed() == 777) {
        EXPECT_EQ(image.data(), reference.images[0].data());
        ++compared;
      }
    }
  }
  EXPECT_GE(compared, 2);
  EXPECT_GT(server.control().largest_batch(), 1) << "the load never batched";
}

TEST(GenerateTest, RandomSeedIsReported) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  GenerateRequest request = SimpleRequest("random");
  request.clear_seed();
  auto result = server.NewClient()->GenerateBlocking(request);
  ASSERT_TRUE(result.status.ok());
  ASSERT_EQ(result.images.size(), 1u);
  auto decoded = DecodePng(result.images[0].data());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->pixels, FakeImage(result.images[0].seed(), "random", 64, 64).pixels);
  EXPECT_EQ(result.metrics.seed(), result.images[0].seed());
}

struct InvalidCase {
  std::string name;
  std::function<void(GenerateRequest*)> mutate;
  std::string field;  // must appear in the error message
};

TEST(GenerateTest, EveryValidationRuleAnswersInvalidArgumentNamingTheField) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  const std::vector<InvalidCase> cases = {
      {"empty prompt", [](GenerateRequest* r) { r->set_prompt(""); }, "prompt"},
      {"blank prompt", [](GenerateRequest* r) { r->set_prompt(" \t\n"); }, "prompt"},
      {"long prompt", [](GenerateRequest* r) { r->set_prompt(std::string(5000, 'a')); }, "prompt"},
      {"long prompt_2", [](GenerateRequest* r) { r->set_prompt_2(std::string(5000, 'b')); },
       "prompt_2"},
      {"steps below", [](GenerateRequest* r) { r->set_steps(1); }, "steps"},
      {"steps above", [](GenerateRequest* r) { r->set_steps(9); }, "steps"},
      {"negative steps", [](GenerateRequest* r) { r->set_steps(-4); }, "steps"},
      {"width not multiple", [](GenerateRequest* r) { r->set_width(65); }, "width"},
      {"negative width", [](GenerateRequest* r) { r->set_width(-64); }, "width"},
      {"height not multiple", [](GenerateRequest* r) { r->set_height(12); }, "height"},
      {"too many pixels",
       [](GenerateRequest* r) {
         r->set_width(256);
         r->set_height(128);
       },
       "width x height"},
      {"too many images", [](GenerateRequest* r) { r->set_num_images(9); }, "num_images"},
      {"negative images", [](GenerateRequest* r) { r->set_num_images(-1); }, "num_images"},
      {"negative guidance", [](GenerateRequest* r) { r->set_guidance_scale(-1); },
       "guidance_scale"},
      {"huge guidance", [](GenerateRequest* r) { r->set_guidance_scale(31); }, "guidance_scale"},
      {"unknown sampler", [](GenerateRequest* r) { r->set_sampler("euler"); }, "sampler"},
      {"unknown format",
       [](GenerateRequest* r) { r->set_format(static_cast<tlcm::v1::ImageFormat>(7)); }, "format"},
      {"quality above",
       [](GenerateRequest* r) {
         r->set_format(tlcm::v1::IMAGE_FORMAT_JPEG);
         r->set_quality(101);
       },
       "quality"},
      {"negative quality",
       [](GenerateRequest* r) {
         r->set_format(tlcm::v1::IMAGE_FORMAT_WEBP);
         r->set_quality(-1);
       },
       "quality"},
      {"request id with space", [](GenerateRequest* r) { r->set_request_id("a b"); }, "request_id"},
      {"long request id", [](GenerateRequest* r) { r->set_request_id(std::string(129, 'x')); },
       "request_id"},
  };
  for (const auto& c : cases) {
    GenerateRequest request = SimpleRequest();
    c.mutate(&request);
    auto result = client->GenerateBlocking(request);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_NE(result.status.error_message().find(c.field), std::string::npos)
        << c.name << ": " << result.status.error_message();
    EXPECT_TRUE(result.events.empty()) << c.name;
  }
}

TEST(GenerateTest, UnknownModelIsNotFound) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  GenerateRequest request = SimpleRequest();
  request.set_model("no-such-model");
  auto result = server.NewClient()->GenerateBlocking(request);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(result.status.error_message().find("no-such-model"), std::string::npos);
}

// One worker, batches of one, a queue of two: with one batch parked mid-run and two requests
// queued, the next request is turned away at once.
tlcm::v1::ServerConfig SmallQueueConfig() {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.clear_devices();
  config.add_devices("cpu");
  auto* model = config.mutable_models(0);
  model->set_max_batch_size(1);
  model->set_max_queue_size(2);
  model->set_max_queue_delay_ms(0);
  return config;
}

TEST(GenerateTest, FullQueueIsResourceExhausted) {
  TestServer server(SmallQueueConfig());
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  server.control().HoldSteps(true);
  auto running = client->Generate(SimpleRequest("running"), {});
  ASSERT_TRUE(server.control().WaitForParkedBatches(1));
  absl::Notification queued_a, queued_b;
  client::GenerateCallbacks callbacks_a{[&](const GenerateResponse& e) {
                                          if (e.has_queued()) queued_a.Notify();
                                        },
                                        nullptr};
  client::GenerateCallbacks callbacks_b{[&](const GenerateResponse& e) {
                                          if (e.has_queued()) queued_b.Notify();
                                        },
                                        nullptr};
  auto waiting_a = client->Generate(SimpleRequest("a"), callbacks_a);
  ASSERT_TRUE(WaitFor(queued_a));
  auto waiting_b = client->Generate(SimpleRequest("b"), callbacks_b);
  ASSERT_TRUE(WaitFor(queued_b));

  auto rejected = client->GenerateBlocking(SimpleRequest("one too many"));
  EXPECT_EQ(rejected.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << rejected.status.error_message();
  EXPECT_TRUE(rejected.events.empty());

  server.control().HoldSteps(false);
  EXPECT_TRUE(running->Wait().ok());
  EXPECT_TRUE(waiting_a->Wait().ok());
  EXPECT_TRUE(waiting_b->Wait().ok());
}

TEST(GenerateTest, ClientCancelMidStreamFreesTheSlot) {
  tlcm::v1::ServerConfig config = SmallQueueConfig();
  config.mutable_models(0)->set_max_queue_size(1);
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  server.control().HoldSteps(true);

  absl::Notification stepped;
  std::vector<GenerateResponse> events;
  client::GenerateCallbacks callbacks{[&](const GenerateResponse& e) {
                                        events.push_back(e);
                                        if (e.has_step()) stepped.Notify();
                                      },
                                      nullptr};
  auto call = client->Generate(SimpleRequest("to cancel"), callbacks);
  ASSERT_TRUE(WaitFor(stepped));
  // Queue one more behind it so the queue is full, then cancel the running one.
  absl::Notification queued;
  auto behind = client->Generate(SimpleRequest("behind"), {[&](const GenerateResponse& e) {
                                                             if (e.has_queued()) queued.Notify();
                                                           },
                                                           nullptr});
  ASSERT_TRUE(WaitFor(queued));
  call->Cancel();
  EXPECT_EQ(call->Wait().error_code(), grpc::StatusCode::CANCELLED);
  for (const auto& event : events) EXPECT_FALSE(event.has_image());

  // The cancelled batch left the worker: the queued request runs, and the freed queue slot
  // takes a new one.
  server.control().HoldSteps(false);
  EXPECT_TRUE(behind->Wait().ok());
  auto after = client->GenerateBlocking(SimpleRequest("after"));
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
}

TEST(GenerateTest, CancelWhileQueuedFreesTheSlot) {
  tlcm::v1::ServerConfig config = SmallQueueConfig();
  config.mutable_models(0)->set_max_queue_size(1);
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  auto client = server.NewClient();
  server.control().HoldSteps(true);
  auto running = client->Generate(SimpleRequest("running"), {});
  ASSERT_TRUE(server.control().WaitForParkedBatches(1));
  absl::Notification queued;
  auto waiting = client->Generate(SimpleRequest("waiting"), {[&](const GenerateResponse& e) {
                                                               if (e.has_queued()) queued.Notify();
                                                             },
                                                             nullptr});
  ASSERT_TRUE(WaitFor(queued));
  EXPECT_EQ(client->GenerateBlocking(SimpleRequest("full")).status.error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  waiting->Cancel();
  EXPECT_EQ(waiting->Wait().error_code(), grpc::StatusCode::CANCELLED);
  // The slot is free again while the first batch is still parked. (The client sees CANCELLED
  // at once; the server learns of it a moment later, so retry briefly.)
  std::unique_ptr<client::GenerateCall> again;
  for (int attempt = 0; attempt < 200 && again == nullptr; ++attempt) {
    struct State {
      absl::Mutex mu;
      bool queued = false;
      bool ended = false;
    };
    auto state = std::make_shared<State>();  // the callbacks may outlive this iteration
    auto call = client->Generate(SimpleRequest("again"), {[state](const GenerateResponse& e) {
                                                            absl::MutexLock lock(&state->mu);
                                                            state->queued |= e.has_queued();
                                                          },
                                                          [state](const grpc::Status&) {
                                                            absl::MutexLock lock(&state->mu);
                                                            state->ended = true;
                                                          }});
    bool queued;
    {
      absl::MutexLock lock(&state->mu);
      auto settled = [&state] { return state->queued || state->ended; };
      ASSERT_TRUE(state->mu.AwaitWithTimeout(absl::Condition(&settled), absl::Seconds(10)));
      queued = state->queued;
    }
    if (queued) {
      again = std::move(call);
    } else {
      EXPECT_EQ(call->Wait().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  ASSERT_NE(again, nullptr) << "the cancelled request's queue slot was never freed";
  server.control().HoldSteps(false);
  EXPECT_TRUE(running->Wait().ok());
  EXPECT_TRUE(again->Wait().ok());
}

TEST(GenerateTest, DeadlineMidStreamEndsTheCallAndFreesTheWorker) {
  TestServer server(SmallQueueConfig());
  ASSERT_TRUE(server.ok());
  server.control().HoldSteps(true);
  client::ClientOptions options;
  options.timeout = absl::Milliseconds(300);
  auto impatient = server.NewClient(options);
  auto result = impatient->GenerateBlocking(SimpleRequest("slow"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(result.images.empty());
  // The parked batch dropped the expired request; the worker serves the next one.
  server.control().HoldSteps(false);
  auto next = server.NewClient()->GenerateBlocking(SimpleRequest("next"));
  EXPECT_TRUE(next.status.ok()) << next.status.error_message();
}

// A 2048 x 1024 noise image is ~6 MiB as PNG, above gRPC's default 4 MiB message limit: the
// server sizes its send limit from the largest configured image.
TEST(GenerateTest, LargestConfiguredImageFitsTheMessageLimit) {
  tlcm::v1::ServerConfig config = BaseConfig();
  config.mutable_models(0)->set_max_pixels(2048 * 1024);
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  GenerateRequest request = SimpleRequest("large");
  request.set_width(2048);
  request.set_height(1024);
  request.set_steps(2);
  auto result = server.NewClient()->GenerateBlocking(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.images.size(), 1u);
  EXPECT_GT(result.images[0].data().size(), 4u << 20);
  auto decoded = DecodePng(result.images[0].data());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->width, 2048);
  EXPECT_EQ(decoded->height, 1024);
}

TEST(ListModelsTest, DescribesConfiguredModels) {
  tlcm::v1::ServerConfig config = BaseConfig();
  auto second = FakeModel("fake-2");
  second.set_min_steps(3);
  second.set_max_steps(6);
  second.set_default_steps(5);
  second.set_max_batch_size(2);
  second.set_batching_mode("step");
  second.add_devices("cpu");
  *config.add_models() = second;
  TestServer server(config);
  ASSERT_TRUE(server.ok());
  tlcm::v1::ListModelsResponse response;
  ASSERT_TRUE(server.NewClient()->ListModels(&response).ok());
  ASSERT_EQ(response.models_size(), 2);
  const auto& a = response.models(0);
  EXPECT_EQ(a.name(), "fake");
  EXPECT_EQ(a.family(), "sdxl");
  EXPECT_EQ(a.default_steps(), 4);
  EXPECT_EQ(a.min_steps(), 2);
  EXPECT_EQ(a.max_steps(), 8);
  EXPECT_EQ(a.default_width(), 64);
  EXPECT_EQ(a.size_multiple(), 8);
  EXPECT_EQ(a.max_pixels(), 128 * 128);
  EXPECT_EQ(a.max_batch_size(), 4);
  EXPECT_EQ(a.batching_mode(), "request");
  EXPECT_TRUE(a.ready());
  ASSERT_EQ(a.samplers_size(), 2);
  EXPECT_EQ(a.samplers(0), "lcm");
  ASSERT_GE(a.devices_size(), 1);
  EXPECT_EQ(a.devices(0), "cpu");
  const auto& b = response.models(1);
  EXPECT_EQ(b.name(), "fake-2");
  EXPECT_EQ(b.default_steps(), 5);
  EXPECT_EQ(b.max_batch_size(), 2);
  EXPECT_EQ(b.batching_mode(), "step");
}

}  // namespace
}  // namespace tlcm::testing
