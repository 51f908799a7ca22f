#include "pipelines/device_memory.h"

#include <unistd.h>

#include <fstream>

#if defined(TLCM_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace tlcm {
namespace {

// The process's resident set size: the second field of /proc/self/statm, in pages.
int64_t ProcessResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return -1;
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? resident_pages * page : -1;
}

}  // namespace

engine::DeviceMemory MeasureDeviceMemory(const torch::Device& device) {
  engine::DeviceMemory memory;
  if (device.is_cpu()) {
    memory.resident_bytes = ProcessResidentBytes();
  }
#if defined(TLCM_WITH_CUDA)
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    // Index 0 is c10::CachingAllocator::StatType::AGGREGATE: all pools together.
    constexpr size_t kAggregate = 0;
    memory.allocated_bytes = stats.allocated_bytes[kAggregate].current;
    memory.reserved_bytes = stats.reserved_bytes[kAggregate].current;
    memory.peak_allocated_bytes = stats.allocated_bytes[kAggregate].peak;
  }
#endif
  return memory;
}

}  // namespace tlcm
