// What a pipeline's device holds in memory, for the engine's device-memory gauges.
#pragma once

#include <torch/torch.h>

#include "engine/pipeline.h"

namespace tlcm {

// Measures `device` now. CUDA (only in builds against a CUDA LibTorch; TLCM_WITH_CUDA): the
// caching allocator's current allocated and reserved bytes of that GPU, and the peak allocated.
// CPU: the resident set size of the whole process from /proc/self/statm (LibTorch's CPU allocator
// keeps no per-device count), -1 where that file cannot be read. Anything else: nothing measured.
// Cheap (no device synchronisation); thread-safe.
engine::DeviceMemory MeasureDeviceMemory(const torch::Device& device);

}  // namespace tlcm
