// The contract between the serving engine and an image pipeline. Torch-free: the engine knows
// "a pipeline that starts, steps and decodes samples", nothing about UNets. src/pipelines/
// adapts the SDXL and FLUX pipelines to it; tests use fake pipelines.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "image/rgb_image.h"
#include "util/client_text.h"

namespace tlcm::engine {

// Everything that changes tensor shapes or the schedule. Requests batch together only when
// their keys are equal; prompts, seeds and guidance may differ inside a batch.
struct BatchKey {
  std::string model;    // configured model name
  int steps = 0;        // denoising steps
  int width = 0;        // pixels
  int height = 0;       // pixels
  std::string sampler;  // scheduler name, e.g. "lcm", "tlcm", "flow_match_tlcm"
  // Image inputs: every job of the batch has an image and runs this part of the schedule,
  // (0, 1]; 0 = text-to-image (no job has an image). `masked`: every job has a mask.
  double strength = 0;
  bool masked = false;

  friend bool operator==(const BatchKey& a, const BatchKey& b) {
    return a.model == b.model && a.steps == b.steps && a.width == b.width && a.height == b.height &&
           a.sampler == b.sampler && a.strength == b.strength && a.masked == b.masked;
  }
  template <typename H>
  friend H AbslHashValue(H h, const BatchKey& k) {
    return H::combine(std::move(h), k.model, k.steps, k.width, k.height, k.sampler, k.strength,
                      k.masked);
  }
};

// A style adapter of an image: a name the model offers (Pipeline::AdapterNames) and its weight
// (diffusers' set_adapters weight: the adapter's update is multiplied by it).
struct LoraChoice {
  std::string name;
  float scale = 1.0f;
};

// A pipeline's adapter cache (pipelines/adapter_cache.h), cumulative since the pipeline loaded.
struct AdapterCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;  // each miss is one load (failed loads included)
  int64_t evictions = 0;
  int64_t bytes = 0;  // device bytes of the adapters the cache holds now
  int64_t entries = 0;
  double load_seconds = 0;  // total time of the loads
};

// Defaults and bounds of the per-model adapter settings (ModelSpec, the server configuration).
inline constexpr int64_t kDefaultAdapterCacheBytes = int64_t{1} << 30;
inline constexpr int kDefaultMaxLoras = 4;
inline constexpr int kMaxLorasLimit = 16;

// What one image shows: its prompts, seed, guidance, adapters and image inputs.
struct ImageJob {
  std::string prompt;
  std::string prompt_2;                // second text encoder's prompt; empty means `prompt`
  uint64_t seed = 0;                   // this image's own seed (a request's seed + image index)
  float guidance_scale = 0.0f;         // FLUX embedded guidance; ignored by SDXL TLCM
  std::vector<LoraChoice> loras = {};  // style adapters; images of one batch may differ
  // Image inputs, shared with the request: present exactly when the run's strength
  // (BatchKey::strength, SampleSpec::strength) is > 0, and the mask when BatchKey::masked.
  std::shared_ptr<const RgbImage> image{};
  std::shared_ptr<const RgbImage> mask{};
};

using ::tlcm::RgbImage;

// What a pipeline call (or a whole batch) cost: wall-clock milliseconds per stage, and the
// prompt-embedding cache lookups it made (the cache lives in the pipeline, next to the tensors).
struct StageTimings {
  double text_encode_ms = 0;
  double text_encode_t5_ms = 0;  // FLUX: the T5 part of text_encode_ms (0 for SDXL)
  double denoise_ms = 0;
  double decode_ms = 0;
  int prompt_cache_hits = 0;
  int prompt_cache_misses = 0;

  // Adds `other`'s times and lookups: the cost of several calls.
  StageTimings& operator+=(const StageTimings& other) {
    text_encode_ms += other.text_encode_ms;
    text_encode_t5_ms += other.text_encode_t5_ms;
    denoise_ms += other.denoise_ms;
    decode_ms += other.decode_ms;
    prompt_cache_hits += other.prompt_cache_hits;
    prompt_cache_misses += other.prompt_cache_misses;
    return *this;
  }
};

// Image `image` of request `request_id`: a sample of a step-level running set.
struct SampleId {
  uint64_t request_id = 0;
  int image = 0;

  friend bool operator==(const SampleId& a, const SampleId& b) {
    return a.request_id == b.request_id && a.image == b.image;
  }
  template <typename H>
  friend H AbslHashValue(H h, const SampleId& s) {
    return H::combine(std::move(h), s.request_id, s.image);
  }
};

// One sample to start: what it shows and its own schedule. Samples of different step counts
// and samplers share a running set (and every denoiser call) when their model and size match.
struct SampleSpec {
  SampleId id;
  ImageJob job;  // prompt, seed, guidance, image inputs
  int steps = 0;
  std::string sampler;  // one of ModelInfo::samplers
  // With job.image: the part of the schedule that runs, (0, 1] (the sample starts at
  // StartStep(family, steps, strength)); 0 without one.
  double strength = 0;
};

// Memory held on a pipeline's device, as the pipeline measures it after a batch run. A field is
// -1 when the pipeline cannot measure it.
struct DeviceMemory {
  int64_t allocated_bytes = -1;       // CUDA: bytes in live tensors (the caching allocator's count)
  int64_t reserved_bytes = -1;        // CUDA: bytes the caching allocator holds from the driver
                                      // (allocated plus cached free blocks)
  int64_t peak_allocated_bytes = -1;  // CUDA: the most allocated_bytes has been since start
  int64_t resident_bytes = -1;        // CPU: the resident set size of the whole process (what the
                                      // kernel reports in /proc/self/statm; every CPU worker, the
                                      // server and the encoders share it)
};

// Static facts about a model, for admission and ListModels.
struct ModelInfo {
  std::string name;
  std::string family;                 // "sdxl" or "flux"
  std::vector<std::string> samplers;  // first = default
  int default_steps = 4;
  int min_steps = 2;
  int max_steps = 8;
  int default_width = 1024;
  int default_height = 1024;
  int size_multiple = 8;             // width and height must be multiples of it
  int64_t max_pixels = 2048 * 2048;  // width * height limit
  float default_guidance_scale = 0;
  int max_loras = 0;  // style adapters a request may name; 0 = the model takes none
  // An inpainting model (SDXL with a 9-channel UNet): every request needs an image and a mask.
  bool needs_mask = false;
};

// A model resident on one device.
class Pipeline {
 public:
  virtual ~Pipeline() = default;
  virtual const ModelInfo& info() const = 0;
  // The device's memory now. Called by the worker thread right after each iteration (warm-ups
  // included), so it must be cheap. The default measures nothing.
  virtual DeviceMemory MemoryUsage() const { return {}; }

  // Generation, step by step. The pipeline keeps each sample's state (latents, prompt
  // embeddings, random stream) from Start until Decode or Release, and advances any set of its
  // samples of one size by one step per call, whatever their step counts, samplers and step
  // indices: the engine's step scheduler decides which samples share a call (a request-level
  // batch is the case where all started together and finish together). An image does not
  // depend on the samples it ran with. Called only by the worker thread that owns the pipeline.
  // Errors: RESOURCE_EXHAUSTED when the device runs out of memory, INVALID_ARGUMENT for a
  // sample the model cannot take, INTERNAL naming the component otherwise; after an error the
  // samples of the call are released.
  //
  // Encodes the prompts (through the prompt cache) and draws the initial latents of `samples`,
  // all `width` x `height`. Reports text_encode_ms and the cache lookups.
  virtual absl::StatusOr<StageTimings> Start(int width, int height,
                                             const std::vector<SampleSpec>& samples) = 0;
  // One denoiser call advancing every sample of `set` (started, unfinished, one size) by one
  // step; reports denoise_ms. CANCELLED, changing nothing, when `interrupt` (polled inside the
  // denoiser) returned true.
  virtual absl::StatusOr<StageTimings> Step(const std::vector<SampleId>& set,
                                            const std::function<bool()>& interrupt) = 0;
  // A cheap picture of the sample's current latent (no VAE).
  virtual absl::StatusOr<RgbImage> Preview(const SampleId& sample) = 0;
  // Decodes finished samples (one size) together into `images` (in order) and forgets them;
  // reports decode_ms.
  virtual absl::StatusOr<StageTimings> Decode(const std::vector<SampleId>& samples,
                                              std::vector<RgbImage>* images) = 0;
  // Forgets samples that left before they finished. Unknown ids are ignored.
  virtual void Release(const std::vector<SampleId>& samples) = 0;

  // Style adapters (per-request LoRAs). Both may be called from any thread, also while the
  // worker is stepping.
  // The adapter names the model offers now, sorted. The default offers none.
  virtual std::vector<std::string> AdapterNames() const { return {}; }
  // Makes `loras` resident on this pipeline's device on the calling thread, so that a batch
  // never waits for a load. NOT_FOUND naming an adapter the model does not offer;
  // INVALID_ARGUMENT for a file that does not fit the model; RESOURCE_EXHAUSTED when it is
  // larger than the adapter cache. The default offers no adapter.
  virtual absl::Status PrepareAdapters(const std::vector<LoraChoice>& loras);
  // The adapter cache's counters; nullopt for a pipeline without one.
  virtual std::optional<AdapterCacheStats> AdapterStats() const { return std::nullopt; }
};

inline absl::Status Pipeline::PrepareAdapters(const std::vector<LoraChoice>& loras) {
  if (loras.empty()) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("loras: adapter ", QuoteClientText(loras.front().name),
                                          " is not offered: the model takes no adapters"));
}

}  // namespace tlcm::engine
