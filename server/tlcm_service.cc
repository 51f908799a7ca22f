#include "server/tlcm_service.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "image/image_format.h"
#include "server/generate_request_body.h"
#include "server/grpc_status.h"
#include "server/load_report.h"
#include "server/request_log.h"
#include "util/status_macros.h"

namespace tlcm::server {
namespace {

using tlcm::v1::GenerateResponse;

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// What the request log needs besides the engine's metrics.
struct CallInfo {
  std::string request_id;
  std::string peer;
  std::string model;
  int steps = 0;
  int width = 0;
  int height = 0;
  int num_images = 0;
};

class GenerateReactor;

// State shared by the gRPC reactor and the engine's event sink; whichever side lives longer
// keeps it alive. The reactor pointer is cleared when gRPC is done with the call.
class GenerateStream {
 public:
  GenerateStream(GenerateReactor* reactor, CallInfo info, absl::Time deadline,
                 std::shared_ptr<const QueuedWork> queued_work)
      : reactor_(reactor),
        info_(std::move(info)),
        deadline_(deadline),
        queued_work_(std::move(queued_work)) {}

  const CallInfo& info() const { return info_; }

  // Queues one response (the request id is filled in) and starts writing if idle.
  void Push(GenerateResponse response) {
    response.set_request_id(info_.request_id);
    {
      absl::MutexLock lock(&mu_);
      if (finish_called_) return;
      pending_.push_back(std::move(response));
    }
    Pump();
  }

  // Sets the terminal status and the call's denoising work in image-steps (for the load report);
  // Finish follows once every queued response is written.
  void Close(const grpc::Status& status, int64_t call_image_steps) {
    {
      absl::MutexLock lock(&mu_);
      if (final_status_.has_value()) return;
      final_status_ = status;
      call_image_steps_ = call_image_steps;
    }
    Pump();
  }

  // The engine accepted the request (or nothing was admitted: `handle` refers to nothing).
  void SetHandle(engine::RequestHandle handle) {
    bool cancel;
    {
      absl::MutexLock lock(&mu_);
      handle_ = handle;
      cancel = cancel_requested_;
    }
    if (cancel) handle.Cancel();
  }

  // gRPC: the client cancelled, the deadline passed, or the connection broke.
  void OnCancel() {
    engine::RequestHandle handle;
    {
      absl::MutexLock lock(&mu_);
      cancel_requested_ = true;
      handle = handle_;
    }
    // Past the deadline the engine ends the request itself with DEADLINE_EXCEEDED (its own
    // timer, same deadline); cancelling here would record it as CANCELLED instead.
    if (absl::Now() < deadline_) handle.Cancel();
  }

  // gRPC: the write in flight finished. `ok` false: the stream is broken (client gone).
  void OnWriteDone(bool ok) {
    if (ok) {
      {
        absl::MutexLock lock(&mu_);
        write_in_flight_ = false;
      }
      Pump();
      return;
    }
    engine::RequestHandle handle;
    GenerateReactor* reactor;
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      pending_.clear();
      handle = handle_;
      reactor = finish_called_ ? nullptr : reactor_;
      finish_called_ = true;
    }
    handle.Cancel();
    if (reactor != nullptr) FinishReactor(reactor, grpc::Status::CANCELLED, 0);
  }

  // gRPC: the reactor is about to be deleted.
  void OnReactorDone() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
  }

 private:
  // Starts the next write, or the Finish once nothing is left. Calls into gRPC without holding
  // mu_: the reactor stays alive until Finish has been called and has completed, and only the
  // thread that set write_in_flight_ / finish_called_ makes the call.
  void Pump();
  static void StartWrite(GenerateReactor* reactor, const grpc::ByteBuffer* response);
  // Finish with the load report (the server's queued work now) in the trailers.
  void FinishReactor(GenerateReactor* reactor, const grpc::Status& status,
                     int64_t call_image_steps);

  absl::Mutex mu_;
  GenerateReactor* reactor_ ABSL_GUARDED_BY(mu_);
  std::deque<GenerateResponse> pending_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer in_flight_;  // written by the thread that sets write_in_flight_
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
  int64_t call_image_steps_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  engine::RequestHandle handle_ ABSL_GUARDED_BY(mu_);
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  const CallInfo info_;
  const absl::Time deadline_;
  const std::shared_ptr<const QueuedWork> queued_work_;
};

class GenerateReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit GenerateReactor(grpc::CallbackServerContext* context) : context_(context) {}
  void Attach(std::shared_ptr<GenerateStream> stream) { stream_ = std::move(stream); }

  void OnWriteDone(bool ok) override { stream_->OnWriteDone(ok); }
  void OnCancel() override { stream_->OnCancel(); }
  void OnDone() override {
    stream_->OnReactorDone();
    delete this;
  }

  // Ends the call with `status` and the load report in its trailers.
  void FinishWithLoadReport(const grpc::Status& status, int64_t queued_image_steps,
                            int64_t call_image_steps) {
    context_->AddTrailingMetadata(kLoadReportKey,
                                  SerializeLoadReport(queued_image_steps, call_image_steps));
    context_->AddTrailingMetadata(kQueuedWorkKey, std::to_string(queued_image_steps));
    Finish(status);
  }

 private:
  grpc::CallbackServerContext* const context_;
  std::shared_ptr<GenerateStream> stream_;
};

void GenerateStream::StartWrite(GenerateReactor* reactor, const grpc::ByteBuffer* response) {
  reactor->StartWrite(response);
}

void GenerateStream::FinishReactor(GenerateReactor* reactor, const grpc::Status& status,
                                   int64_t call_image_steps) {
  reactor->FinishWithLoadReport(status, queued_work_->image_steps(), call_image_steps);
}

void GenerateStream::Pump() {
  GenerateReactor* reactor;
  std::optional<grpc::Status> finish;
  int64_t call_image_steps = 0;
  std::optional<GenerateResponse> next;
  {
    absl::MutexLock lock(&mu_);
    if (reactor_ == nullptr || finish_called_ || write_in_flight_) return;
    if (!pending_.empty()) {
      next = std::move(pending_.front());
      pending_.pop_front();
      write_in_flight_ = true;
    } else if (final_status_.has_value()) {
      finish_called_ = true;
      finish = *final_status_;
      call_image_steps = call_image_steps_;
    } else {
      return;
    }
    reactor = reactor_;
  }
  if (finish.has_value()) {
    FinishReactor(reactor, *finish, call_image_steps);
  } else {
    in_flight_ = SerializeGenerateResponse(*next);  // outside mu_: images are megabytes
    StartWrite(reactor, &in_flight_);
  }
}

// Turns the engine's events into responses on the stream; logs the request at its end. Takes
// the request's work (`admitted_image_steps`, already added to `queued_work`) off `queued_work`
// step by step as it runs, and what is left when it ends.
class StreamSink final : public engine::GenerationEventSink {
 public:
  StreamSink(std::shared_ptr<GenerateStream> stream, std::shared_ptr<QueuedWork> queued_work,
             int64_t admitted_image_steps)
      : stream_(std::move(stream)),
        queued_work_(std::move(queued_work)),
        admitted_image_steps_(admitted_image_steps) {}

  void OnQueued(int position) override {
    GenerateResponse response;
    response.mutable_queued()->set_position(position);
    stream_->Push(std::move(response));
  }

  void OnStarted(const engine::StartedEvent& event) override {
    GenerateResponse response;
    auto* started = response.mutable_started();
    started->set_device(event.device);
    started->set_batch_size(event.batch_size);
    started->set_first_image(event.first_image);
    started->set_num_images(event.num_images);
    stream_->Push(std::move(response));
  }

  void OnStep(const engine::StepEvent& event) override {
    const int64_t ran =
        std::min<int64_t>(event.num_images, admitted_image_steps_ - ran_image_steps_);
    ran_image_steps_ += ran;
    queued_work_->Add(-ran);
    GenerateResponse response;
    auto* step = response.mutable_step();
    step->set_step(event.step);
    step->set_total_steps(event.total_steps);
    step->set_first_image(event.first_image);
    step->set_num_images(event.num_images);
    stream_->Push(std::move(response));
  }

  void OnPreview(engine::PreviewEvent event) override {
    GenerateResponse response;
    auto* preview = response.mutable_preview();
    preview->set_index(event.index);
    preview->set_step(event.step);
    preview->set_data(std::move(event.data));
    preview->set_format(ToProtoFormat(event.format));
    preview->set_width(event.width);
    preview->set_height(event.height);
    stream_->Push(std::move(response));
  }

  void OnImage(engine::GeneratedImage event) override {
    if (!seed_.has_value()) seed_ = event.seed - static_cast<uint64_t>(event.index);
    GenerateResponse response;
    auto* image = response.mutable_image();
    image->set_index(event.index);
    image->set_seed(event.seed);
    image->set_data(std::move(event.data));
    image->set_format(ToProtoFormat(event.format));
    image->set_width(event.width);
    image->set_height(event.height);
    stream_->Push(std::move(response));
  }

  void OnDone(const absl::Status& status, const engine::RequestMetrics& metrics) override {
    const CallInfo& info = stream_->info();
    if (status.ok()) {
      GenerateResponse response;
      auto* m = response.mutable_metrics();
      m->set_queue_ms(metrics.queue_ms);
      m->set_text_encode_ms(metrics.text_encode_ms);
      m->set_denoise_ms(metrics.denoise_ms);
      m->set_decode_ms(metrics.decode_ms);
      m->set_image_encode_ms(metrics.image_encode_ms);
      m->set_total_ms(metrics.total_ms);
      m->set_batch_size(metrics.batch_size);
      m->set_num_batches(metrics.num_batches);
      m->set_num_images(metrics.num_images);
      m->set_device(metrics.device);
      m->set_steps(info.steps);
      m->set_width(info.width);
      m->set_height(info.height);
      m->set_seed(seed_.value_or(0));
      stream_->Push(std::move(response));
    }
    RequestLogEntry entry{info.request_id, info.peer,       info.model, info.steps, info.width,
                          info.height,     info.num_images, metrics,    status};
    LogRequest(entry);
    queued_work_->Add(-(admitted_image_steps_ - ran_image_steps_));
    stream_->Close(ToGrpcStatus(status), ran_image_steps_);
  }

 private:
  std::shared_ptr<GenerateStream> stream_;
  const std::shared_ptr<QueuedWork> queued_work_;
  const int64_t admitted_image_steps_;
  // Touched only by the engine's (serialized) event calls.
  int64_t ran_image_steps_ = 0;
  std::optional<uint64_t> seed_;
};

bool ValidRequestId(const std::string& id) {
  if (id.size() > engine::kMaxClientRequestIdBytes) return false;
  for (char c : id) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

// The resolved steps / size of `request` (for the log line and the final Metrics event), when
// its model is known and it is valid (else zeros: the engine rejects it with the precise error).
void ResolveShape(engine::Engine& engine, const engine::GenerationRequest& request,
                  CallInfo* info) {
  for (const auto& model : engine.ListModels()) {
    if (model.info.name != request.model) continue;
    auto resolved = engine::ValidateRequest(request, model.info, model.limits);
    if (resolved.ok()) {
      info->steps = resolved->key.steps;
      info->width = resolved->key.width;
      info->height = resolved->key.height;
    }
    return;
  }
}

}  // namespace

tlcm::v1::ImageFormat ToProtoFormat(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return tlcm::v1::IMAGE_FORMAT_JPEG;
    case ImageFormat::kWebp:
      return tlcm::v1::IMAGE_FORMAT_WEBP;
    case ImageFormat::kPng:
      break;
  }
  return tlcm::v1::IMAGE_FORMAT_PNG;
}

absl::StatusOr<engine::GenerationRequest> ToEngineRequest(const tlcm::v1::GenerateRequest& request,
                                                          absl::Time deadline) {
  engine::GenerationRequest out;
  out.model = request.model();
  out.prompt = request.prompt();
  out.prompt_2 = request.prompt_2();
  out.steps = request.steps();
  out.width = request.width();
  out.height = request.height();
  if (request.has_seed()) out.seed = request.seed();
  out.num_images = request.num_images() == 0 ? 1 : request.num_images();
  if (request.has_guidance_scale()) out.guidance_scale = request.guidance_scale();
  out.sampler = request.sampler();
  switch (request.format()) {
    case tlcm::v1::IMAGE_FORMAT_UNSPECIFIED:
    case tlcm::v1::IMAGE_FORMAT_PNG:
      out.format = ImageFormat::kPng;
      break;
    case tlcm::v1::IMAGE_FORMAT_JPEG:
      out.format = ImageFormat::kJpeg;
      break;
    case tlcm::v1::IMAGE_FORMAT_WEBP:
      out.format = ImageFormat::kWebp;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("format: unknown value ", static_cast<int>(request.format()),
                       " (IMAGE_FORMAT_PNG = 1, IMAGE_FORMAT_JPEG = 2, IMAGE_FORMAT_WEBP = 3)"));
  }
  out.quality = request.quality();
  out.previews = request.stream_previews();
  if (!ValidRequestId(request.request_id())) {
    return absl::InvalidArgumentError(absl::StrCat("request_id: must be at most ",
                                                   engine::kMaxClientRequestIdBytes,
                                                   " printable ASCII characters without spaces"));
  }
  out.client_request_id = request.request_id();
  for (const tlcm::v1::LoraWeight& lora : request.loras()) {
    out.loras.push_back({lora.name(), lora.scale()});
  }
  out.deadline = deadline;
  if (!request.image().empty()) {
    TLCM_ASSIGN_OR_RETURN(RgbImage image, DecodeImage(request.image(), "image"));
    out.image = std::make_shared<const RgbImage>(std::move(image));
  }
  if (!request.mask().empty()) {
    TLCM_ASSIGN_OR_RETURN(RgbImage mask, DecodeImage(request.mask(), "mask"));
    out.mask = std::make_shared<const RgbImage>(std::move(mask));
  }
  if (request.has_strength()) out.strength = request.strength();
  return out;
}

TlcmServiceImpl::TlcmServiceImpl(engine::Engine* engine, ServerMetrics* metrics,
                                 const TokenAuthenticator* auth, RequestIdGenerator* request_ids)
    : engine_(engine),
      metrics_(metrics),
      auth_(auth),
      request_ids_(request_ids),
      queued_work_(std::make_shared<QueuedWork>()) {}

grpc::ServerWriteReactor<grpc::ByteBuffer>* TlcmServiceImpl::Generate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* body) {
  auto* reactor = new GenerateReactor(context);
  const absl::Time deadline = DeadlineOf(*context);
  absl::StatusOr<tlcm::v1::GenerateRequest> parsed = ParseGenerateRequest(*body);
  const tlcm::v1::GenerateRequest& request =
      parsed.ok() ? *parsed : tlcm::v1::GenerateRequest::default_instance();
  CallInfo info;
  info.request_id = request.request_id().empty() || !ValidRequestId(request.request_id())
                        ? request_ids_->Next()
                        : request.request_id();
  info.peer = context->peer();
  info.model = request.model();
  info.num_images = request.num_images() == 0 ? 1 : request.num_images();
  auto engine_request = ToEngineRequest(request, deadline);

  // Rejections decided here, before the engine: authentication, then an unreadable body, then
  // malformed fields.
  absl::Status rejected = absl::OkStatus();
  if (auth_ != nullptr) rejected = auth_->Check(context->client_metadata());
  if (rejected.ok() && !parsed.ok()) rejected = parsed.status();
  if (rejected.ok() && !engine_request.ok()) rejected = engine_request.status();
  if (rejected.ok()) ResolveShape(*engine_, *engine_request, &info);

  auto stream = std::make_shared<GenerateStream>(reactor, info, deadline, queued_work_);
  reactor->Attach(stream);
  if (!rejected.ok()) {
    // Label "": a client's model string never becomes a label value before the engine vetted it.
    metrics_->OnRejectedByServer("", rejected.code());
    RequestLogEntry entry{info.request_id,          info.peer, info.model, 0, 0, 0, info.num_images,
                          engine::RequestMetrics(), rejected};
    LogRequest(entry);
    stream->Close(ToGrpcStatus(rejected), 0);
    return reactor;
  }

  // Counted before Submit: the engine's workers may run steps before Submit has returned.
  const int64_t image_steps = static_cast<int64_t>(info.num_images) * info.steps;
  queued_work_->Add(image_steps);
  auto handle = engine_->Submit(*std::move(engine_request),
                                std::make_shared<StreamSink>(stream, queued_work_, image_steps));
  if (!handle.ok()) {
    queued_work_->Add(-image_steps);
    RequestLogEntry entry{info.request_id, info.peer,   info.model,      info.steps,
                          info.width,      info.height, info.num_images, engine::RequestMetrics(),
                          handle.status()};
    LogRequest(entry);
    stream->Close(ToGrpcStatus(handle.status()), 0);
    return reactor;
  }
  stream->SetHandle(*handle);
  return reactor;
}

grpc::ServerUnaryReactor* TlcmServiceImpl::ListModels(
    grpc::CallbackServerContext* context, const tlcm::v1::ListModelsRequest* /*request*/,
    tlcm::v1::ListModelsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (auth_ != nullptr) {
    absl::Status status = auth_->Check(context->client_metadata());
    if (!status.ok()) {
      reactor->Finish(ToGrpcStatus(status));
      return reactor;
    }
  }
  for (const engine::ModelStatus& model : engine_->ListModels()) {
    auto* out = response->add_models();
    out->set_name(model.info.name);
    out->set_family(model.info.family);
    for (const auto& sampler : model.info.samplers) out->add_samplers(sampler);
    out->set_default_steps(model.info.default_steps);
    out->set_min_steps(model.info.min_steps);
    out->set_max_steps(model.info.max_steps);
    out->set_default_width(model.info.default_width);
    out->set_default_height(model.info.default_height);
    out->set_size_multiple(model.info.size_multiple);
    out->set_max_pixels(model.info.max_pixels);
    out->set_default_guidance_scale(model.info.default_guidance_scale);
    out->set_max_batch_size(model.batching.max_batch_size);
    out->set_batching_mode(std::string(engine::BatchingModeName(model.batching.mode)));
    for (const auto& device : model.devices) out->add_devices(device);
    out->set_ready(model.ready);
    for (const auto& adapter : engine_->Adapters(model.info.name)) out->add_adapters(adapter);
    out->set_max_loras(model.info.max_loras);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace tlcm::server
