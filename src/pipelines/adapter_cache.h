// The style adapters one model offers on one device: a folder of LoRA files, loaded on first
// use into a least-recently-used cache with a byte budget.
//
// The folder holds `<name>.safetensors` files and `<name>/` folders (PEFT or diffusers adapter
// folders, loaders/lora.h); the name is what a request asks for. The folder is read at each
// miss, so adapters added to it are offered without a restart.
//
// Get() loads on the calling thread, never under the cache's lock: callers ask for a request's
// adapters before it reaches the device's worker (admission), so a load never holds up a running
// batch; two callers asking for the same missing adapter share one load. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/pipeline.h"
#include "pipelines/device_adapter.h"

namespace tlcm {

class AdapterCache {
 public:
  // Loads the adapter `name` from `path` onto the device (DeviceAdapter::Load, bound to a model).
  using Loader = std::function<absl::StatusOr<std::shared_ptr<const DeviceAdapter>>(
      const std::string& name, const std::string& path)>;

  using Stats = engine::AdapterCacheStats;

  // `byte_budget`: the most device bytes the cached adapters may hold together.
  AdapterCache(std::string folder, int64_t byte_budget, Loader loader);

  // The names the folder offers, sorted; empty when the folder is unset or absent.
  std::vector<std::string> Names() const;

  // The adapter `name`, resident. InvalidArgument for a name that is not a plain file name;
  // NotFound (naming the adapter) when the folder has no adapter of that name;
  // ResourceExhausted when it alone is larger than the budget; load errors as the loader gives
  // them. A result stays valid while held, also after the cache has evicted it.
  absl::StatusOr<std::shared_ptr<const DeviceAdapter>> Get(const std::string& name);

  Stats stats() const;
  const std::string& folder() const { return folder_; }

 private:
  using Result = absl::StatusOr<std::shared_ptr<const DeviceAdapter>>;
  // The file or folder of `name` in the folder; empty when there is none.
  std::string PathOf(const std::string& name) const;
  // Inserts a loaded adapter and evicts the least recently used ones beyond the budget.
  void Insert(const std::shared_ptr<const DeviceAdapter>& adapter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string folder_;
  const int64_t byte_budget_;
  const Loader loader_;

  mutable absl::Mutex mu_;
  // Most recently used first.
  std::list<std::shared_ptr<const DeviceAdapter>> lru_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::list<std::shared_ptr<const DeviceAdapter>>::iterator> index_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_future<Result>> loading_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// An AdapterCache whose adapters change the layers of `denoiser` (which must outlive it) and
// live on `device` in `dtype`.
std::unique_ptr<AdapterCache> MakeAdapterCache(const std::string& folder, int64_t byte_budget,
                                               torch::nn::Module* denoiser,
                                               const torch::Device& device, torch::Dtype dtype);

}  // namespace tlcm
