// The hand-off of images and previews to the encoder pool, and their return into the
// request's events in the order the pipeline produced them.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/engine_core.h"

namespace tlcm::engine::internal {

void EngineCore::ReportEncoderBacklogLocked() {
  if (observer_ != nullptr) observer_->OnEncoderBacklog(encoder_backlog_);
}

void EngineCore::SubmitEncode(EncodeJob job) {
  {
    absl::MutexLock lock(&mu_);
    if (!IsActiveLocked(job.request->id)) return;  // ended: nobody waits for the image
    job.slot = job.request->events->Reserve();
    ++job.progress->encodes_pending;
    ++encoder_backlog_;
    ReportEncoderBacklogLocked();
  }
  // std::function needs a copyable callable: the job travels in a shared_ptr.
  auto shared = std::make_shared<EncodeJob>(std::move(job));
  encoders_->Submit([this, shared] { Encode(*shared); });
}

EngineCore::EncodeJob EngineCore::MakeEncodeJob(std::shared_ptr<const Request> request,
                                                std::shared_ptr<SampleProgress> progress, int index,
                                                std::optional<int> preview_step, RgbImage image,
                                                const std::string& context) {
  const int width = image.width, height = image.height;
  const ImageFormat format = request->request.format;
  const uint64_t seed = request->seed + static_cast<uint64_t>(index);
  EncodeJob job{std::move(request),
                std::move(progress),
                0,
                std::move(image),
                /*final_image=*/!preview_step.has_value(),
                preview_step.has_value() ? absl::StrCat("the preview of image ", index)
                                         : absl::StrCat("image ", index),
                context,
                {}};
  if (preview_step.has_value()) {
    job.make_event = [=, step = *preview_step](std::string bytes) -> EventStream::Event {
      PreviewEvent event{index, step, std::move(bytes), width, height, format};
      return [event = std::move(event)](GenerationEventSink& sink) mutable {
        sink.OnPreview(std::move(event));
      };
    };
  } else {
    job.make_event = [=](std::string bytes) -> EventStream::Event {
      GeneratedImage event{index, seed, std::move(bytes), width, height, format};
      return [event = std::move(event)](GenerationEventSink& sink) mutable {
        sink.OnImage(std::move(event));
      };
    };
  }
  return job;
}

void EngineCore::Encode(EncodeJob& job) {
  const Request& r = *job.request;
  const absl::Time start = clock_->Now();
  absl::StatusOr<std::string> encoded =
      options_.image_encoder
          ? options_.image_encoder(job.image, r.request.format, r.resolved.quality)
          : EncodeImage(job.image, r.request.format, r.resolved.quality);
  const double encode_ms = Millis(clock_->Now() - start);
  job.image = RgbImage();  // the pixels are not needed any more
  FlushList flush;
  {
    absl::MutexLock lock(&mu_);
    --encoder_backlog_;
    ReportEncoderBacklogLocked();
    --job.progress->encodes_pending;
    auto it = active_.find(r.id);
    if (it != active_.end()) {
      if (!encoded.ok()) {
        // The request was valid; a picture the encoder refuses is the server's fault.
        FinishLocked(r.id,
                     absl::InternalError(absl::StrCat(job.context, ": encoding ", job.what, ": ",
                                                      encoded.status().message())),
                     &flush);
      } else {
        it->second.metrics.image_encode_ms += encode_ms;
        r.events->Fill(job.slot, job.make_event(*std::move(encoded)));
        flush.push_back(r.events);
        if (job.final_image) {
          job.progress->delivered = true;
          ++it->second.metrics.num_images;
          if (observer_ != nullptr) observer_->OnImageDelivered(r.request.model, encode_ms);
        }
        SettleSampleLocked(r.id, *job.progress, job.context, &flush);
      }
    }
  }
  Flush(flush);
}

}  // namespace tlcm::engine::internal
