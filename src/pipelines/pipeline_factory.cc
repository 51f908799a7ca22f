// CreatePipeline: the bridge from the torch-free engine to the SDXL and FLUX pipelines.
#include "pipelines/pipeline_factory.h"

#include <map>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "loaders/diffusers_folder.h"
#include "pipelines/component_loader.h"
#include "pipelines/device_memory.h"
#include "pipelines/flux_pipeline.h"
#include "pipelines/run_timer.h"
#include "pipelines/sdxl_pipeline.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

// Adapts a pipeline's step-wise API (denoising_sample.h) to engine::Pipeline. Torch exceptions
// become statuses here: out of memory -> RESOURCE_EXHAUSTED, anything else INTERNAL naming the
// model.
template <typename Impl>
class ServingPipeline : public engine::Pipeline {
 public:
  ServingPipeline(std::unique_ptr<Impl> impl, engine::ModelInfo info, torch::Device device)
      : impl_(std::move(impl)), info_(std::move(info)), device_(device) {}

  const engine::ModelInfo& info() const override { return info_; }

  engine::DeviceMemory MemoryUsage() const override { return MeasureDeviceMemory(device_); }

  std::vector<std::string> AdapterNames() const override { return impl_->adapters().Names(); }

  std::optional<engine::AdapterCacheStats> AdapterStats() const override {
    if (impl_->adapters().folder().empty()) return std::nullopt;
    return impl_->adapters().stats();
  }

  absl::Status PrepareAdapters(const std::vector<engine::LoraChoice>& loras) override {
    for (const engine::LoraChoice& lora : loras) {
      TLCM_RETURN_IF_ERROR(ResidentAdapter(lora).status());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<engine::StageTimings> Start(
      int width, int height, const std::vector<engine::SampleSpec>& samples) override {
    absl::StatusOr<engine::StageTimings> timings =
        Guarded<engine::StageTimings>([&]() -> absl::StatusOr<engine::StageTimings> {
          RunTimer timer(device_);
          engine::StageTimings out;
          // Samples of one schedule (and one kind of image input) start together: one
          // text-encoder call per group. Once started, they step with any sample of the size.
          std::map<StartGroup, std::vector<size_t>> groups;
          for (size_t i = 0; i < samples.size(); ++i) {
            const engine::SampleSpec& sample = samples[i];
            groups[{sample.steps, sample.sampler, sample.strength, sample.job.mask != nullptr}]
                .push_back(i);
          }
          for (const auto& [group, members] : groups) {
            std::vector<ImageRequest> requests;
            for (size_t i : members) {
              TLCM_ASSIGN_OR_RETURN(ImageRequest request, RequestOf(samples[i].job));
              requests.push_back(std::move(request));
            }
            RunSettings settings{group.steps, width, height, group.sampler};
            if (group.strength > 0) settings.strength = group.strength;
            TLCM_ASSIGN_OR_RETURN(std::vector<DenoisingSample> started,
                                  impl_->StartSamples(requests, settings, &out));
            for (size_t k = 0; k < members.size(); ++k) {
              samples_.insert_or_assign(KeyOf(samples[members[k]].id), std::move(started[k]));
            }
          }
          out.text_encode_ms = timer.Lap();
          return out;
        });
    if (!timings.ok()) {
      for (const engine::SampleSpec& sample : samples) samples_.erase(KeyOf(sample.id));
    }
    return timings;
  }

  absl::StatusOr<engine::StageTimings> Step(const std::vector<engine::SampleId>& set,
                                            const std::function<bool()>& interrupt) override {
    std::vector<DenoisingSample*> samples;
    TLCM_RETURN_IF_ERROR(Find(set, &samples));
    absl::StatusOr<engine::StageTimings> timings =
        Guarded<engine::StageTimings>([&]() -> absl::StatusOr<engine::StageTimings> {
          RunTimer timer(device_);
          if (!impl_->Step(samples, interrupt)) {
            return absl::CancelledError("no sample of the set is wanted any more");
          }
          engine::StageTimings out;
          out.denoise_ms = timer.Lap();
          return out;
        });
    if (!timings.ok() && !absl::IsCancelled(timings.status())) Release(set);
    return timings;
  }

  absl::StatusOr<RgbImage> Preview(const engine::SampleId& id) override {
    auto it = samples_.find(KeyOf(id));
    if (it == samples_.end()) return UnknownSample(id);
    return Guarded<RgbImage>([&] { return impl_->Preview(it->second); });
  }

  absl::StatusOr<engine::StageTimings> Decode(const std::vector<engine::SampleId>& ids,
                                              std::vector<RgbImage>* images) override {
    std::vector<const DenoisingSample*> samples;
    TLCM_RETURN_IF_ERROR(Find(ids, &samples));
    absl::StatusOr<engine::StageTimings> timings =
        Guarded<engine::StageTimings>([&]() -> absl::StatusOr<engine::StageTimings> {
          RunTimer timer(device_);
          *images = impl_->Decode(samples);
          engine::StageTimings out;
          out.decode_ms = timer.Lap();
          return out;
        });
    Release(ids);
    return timings;
  }

  void Release(const std::vector<engine::SampleId>& ids) override {
    for (const engine::SampleId& id : ids) samples_.erase(KeyOf(id));
  }

 private:
  using Key = std::pair<uint64_t, int>;
  // What samples must share to start in one StartSamples call: RunSettings and whether they
  // are inpainted (strength 0 = text-to-image).
  struct StartGroup {
    int steps = 0;
    std::string sampler;
    double strength = 0;
    bool masked = false;
    friend auto operator<=>(const StartGroup&, const StartGroup&) = default;
  };
  static Key KeyOf(const engine::SampleId& id) { return {id.request_id, id.image}; }
  // The pipeline's form of `job` (its pictures shared, not copied), its adapters resident on this
  // device. Admission made them
  // resident (PrepareAdapters): these are cache hits, unless the cache has evicted one since,
  // which then loads here.
  absl::StatusOr<ImageRequest> RequestOf(const engine::ImageJob& job) const {
    ImageRequest request{job};
    for (const engine::LoraChoice& lora : job.loras) {
      TLCM_ASSIGN_OR_RETURN(auto adapter, ResidentAdapter(lora));
      request.adapters.push_back({std::move(adapter), lora.scale});
    }
    return request;
  }
  // The started samples `ids` name, in order; INTERNAL naming the first that was not started.
  template <typename Sample>
  absl::Status Find(const std::vector<engine::SampleId>& ids, std::vector<Sample*>* found) {
    for (const engine::SampleId& id : ids) {
      auto it = samples_.find(KeyOf(id));
      if (it == samples_.end()) return UnknownSample(id);
      found->push_back(&it->second);
    }
    return absl::OkStatus();
  }
  absl::Status UnknownSample(const engine::SampleId& id) const {
    return absl::InternalError(absl::StrCat(info_.name, ": no sample ", id.image, " of request ",
                                            id.request_id, " was started"));
  }
  template <typename T, typename F>
  absl::StatusOr<T> Guarded(F&& call) {
    try {
      return call();
    } catch (const c10::OutOfMemoryError& e) {
      return absl::ResourceExhaustedError(
          absl::StrCat(info_.name, ": out of device memory: ", e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat(info_.name, ": ", ExceptionSummary(e)));
    }
  }

  // `lora`'s adapter on this device; errors name the model and the adapter.
  absl::StatusOr<std::shared_ptr<const DeviceAdapter>> ResidentAdapter(
      const engine::LoraChoice& lora) const {
    auto adapter = impl_->adapters().Get(lora.name);
    if (adapter.ok()) return adapter;
    return absl::Status(adapter.status().code(),
                        absl::StrCat("loras: ", info_.name, ": ", adapter.status().message()));
  }

  std::unique_ptr<Impl> impl_;
  engine::ModelInfo info_;
  torch::Device device_;
  std::map<Key, DenoisingSample> samples_;  // started and not yet decoded or released
};

engine::ModelInfo InfoFor(const ModelSpec& spec, PipelineFamily family, int size_multiple) {
  engine::ModelInfo info;
  info.name = spec.name;
  info.family = FamilyName(family);
  if (family == PipelineFamily::kSdxl) {
    info.samplers = {StableDiffusionXLPipeline::kDefaultScheduler, "tlcm"};
    info.default_guidance_scale = 0.0f;
  } else {
    info.samplers = {FluxPipeline::kDefaultScheduler};
    info.default_guidance_scale = FluxPipeline::kDefaultGuidanceScale;
  }
  info.min_steps = spec.min_steps;
  info.max_steps = spec.max_steps;
  info.default_steps = spec.default_steps;
  info.default_width = spec.default_width > 0 ? spec.default_width : 1024;
  info.default_height = spec.default_height > 0 ? spec.default_height : 1024;
  info.size_multiple = size_multiple;
  info.max_pixels = spec.max_pixels > 0 ? spec.max_pixels : int64_t{2048} * 2048;
  info.max_loras = spec.adapter_folder.empty() ? 0 : spec.max_loras;
  return info;
}

}  // namespace

absl::StatusOr<std::unique_ptr<engine::Pipeline>> CreatePipeline(const ModelSpec& spec,
                                                                 const std::string& device_name) {
  TLCM_ASSIGN_OR_RETURN(DiffusersFolder folder, OpenDiffusersFolder(spec.base_model_path));
  TLCM_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(device_name));
  PipelineOptions options;
  options.device = device;
  TLCM_ASSIGN_OR_RETURN(
      options.dtype,
      ParseDtype(spec.dtype, device,
                 folder.family == PipelineFamily::kSdxl ? torch::kFloat16 : torch::kBFloat16));
  options.variant = spec.variant;
  options.lora_path = spec.lora_path;
  if (spec.lora_scale >= 0) options.lora_scale = spec.lora_scale;
  options.lora_scale_from_config = spec.lora_scale_from_config;
  options.vae_path = spec.vae_path;
  if (spec.vae_dtype != "auto" && !spec.vae_dtype.empty()) {
    TLCM_ASSIGN_OR_RETURN(options.vae_dtype, ParseDtype(spec.vae_dtype, device, options.dtype));
  }
  options.channels_last = spec.channels_last;
  options.cuda_graphs = spec.cuda_graphs;
  options.max_sequence_length = spec.max_sequence_length;
  options.prompt_cache_entries = spec.prompt_cache_entries;
  options.adapter_folder = spec.adapter_folder;
  options.adapter_cache_bytes = spec.adapter_cache_bytes;
  try {
    if (folder.family == PipelineFamily::kSdxl) {
      TLCM_ASSIGN_OR_RETURN(auto impl,
                            StableDiffusionXLPipeline::Load(spec.base_model_path, options));
      const int multiple = impl->vae_scale_factor();
      engine::ModelInfo info = InfoFor(spec, folder.family, multiple);
      info.needs_mask = impl->inpainting_unet();
      return std::make_unique<ServingPipeline<StableDiffusionXLPipeline>>(std::move(impl),
                                                                          std::move(info), device);
    }
    TLCM_ASSIGN_OR_RETURN(auto impl, FluxPipeline::Load(spec.base_model_path, options));
    const int multiple = 2 * impl->vae_scale_factor();
    return std::make_unique<ServingPipeline<FluxPipeline>>(
        std::move(impl), InfoFor(spec, folder.family, multiple), device);
  } catch (const c10::OutOfMemoryError& e) {
    return absl::ResourceExhaustedError(absl::StrCat(spec.name, ": out of memory while loading on ",
                                                     device_name, ": ",
                                                     e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(spec.name, ": loading failed: ", ExceptionSummary(e)));
  }
}

std::vector<std::string> AvailableDevices() {
  std::vector<std::string> devices = {"cpu"};
  if (torch::cuda::is_available()) {
    const int count = static_cast<int>(torch::cuda::device_count());
    for (int i = 0; i < count; ++i) devices.push_back(absl::StrCat("cuda:", i));
  }
  return devices;
}

void SetComputeThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
}

}  // namespace tlcm
