// CreatePipeline: the bridge from the torch-free engine to the SDXL and FLUX pipelines.
#include "pipelines/pipeline_factory.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "loaders/diffusers_folder.h"
#include "pipelines/component_loader.h"
#include "pipelines/device_memory.h"
#include "pipelines/flux_pipeline.h"
#include "pipelines/sdxl_pipeline.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

// Adapts a pipeline with Run(requests, settings, hooks) to engine::Pipeline. Torch exceptions
// become statuses here: out of memory -> RESOURCE_EXHAUSTED, anything else INTERNAL naming the
// model.
template <typename Impl>
class ServingPipeline : public engine::Pipeline {
 public:
  ServingPipeline(std::unique_ptr<Impl> impl, engine::ModelInfo info, torch::Device device)
      : impl_(std::move(impl)), info_(std::move(info)), device_(device) {}

  const engine::ModelInfo& info() const override { return info_; }

  engine::DeviceMemory MemoryUsage() const override { return MeasureDeviceMemory(device_); }

  absl::StatusOr<engine::StageTimings> Run(const engine::BatchKey& key,
                                           const std::vector<engine::ImageJob>& jobs,
                                           const engine::BatchCallbacks& callbacks) override {
    std::vector<ImageRequest> requests;
    for (const engine::ImageJob& job : jobs) {
      requests.push_back({job.prompt, job.prompt_2, job.seed, job.guidance_scale});
    }
    RunSettings settings{key.steps, key.width, key.height, key.sampler};
    RunHooks hooks{callbacks.should_drop, callbacks.on_step, callbacks.wants_preview,
                   callbacks.on_preview};
    absl::StatusOr<RunResult> result;
    try {
      result = impl_->Run(requests, settings, hooks);
    } catch (const c10::OutOfMemoryError& e) {
      return absl::ResourceExhaustedError(
          absl::StrCat(info_.name, ": out of device memory: ", e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat(info_.name, ": ", ExceptionSummary(e)));
    }
    if (!result.ok()) return result.status();
    for (size_t i = 0; i < result->images.size(); ++i) {
      if (result->images[i] && callbacks.on_image)
        callbacks.on_image(i, std::move(*result->images[i]));
    }
    engine::StageTimings timings;
    timings.text_encode_ms = result->text_encode_ms;
    timings.text_encode_t5_ms = result->text_encode_t5_ms;
    timings.denoise_ms = result->denoise_ms;
    timings.decode_ms = result->decode_ms;
    timings.prompt_cache_hits = result->prompt_cache_hits;
    timings.prompt_cache_misses = result->prompt_cache_misses;
    return timings;
  }

 private:
  std::unique_ptr<Impl> impl_;
  engine::ModelInfo info_;
  torch::Device device_;
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
  options.max_sequence_length = spec.max_sequence_length;
  options.prompt_cache_entries = spec.prompt_cache_entries;
  try {
    if (folder.family == PipelineFamily::kSdxl) {
      TLCM_ASSIGN_OR_RETURN(auto impl,
                            StableDiffusionXLPipeline::Load(spec.base_model_path, options));
      const int multiple = impl->vae_scale_factor();
      return std::make_unique<ServingPipeline<StableDiffusionXLPipeline>>(
          std::move(impl), InfoFor(spec, folder.family, multiple), device);
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
