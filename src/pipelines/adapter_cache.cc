#include "pipelines/adapter_cache.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/client_text.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

constexpr const char* kExtension = ".safetensors";

// A name is one plain file name: letters, digits, '.', '_', '-', not starting with '.'.
bool IsPlainName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

AdapterCache::AdapterCache(std::string folder, int64_t byte_budget, Loader loader)
    : folder_(std::move(folder)), byte_budget_(byte_budget), loader_(std::move(loader)) {}

std::vector<std::string> AdapterCache::Names() const {
  std::vector<std::string> names;
  std::error_code error;
  if (folder_.empty() || !fs::is_directory(folder_, error)) return names;
  for (const auto& entry : fs::directory_iterator(folder_, error)) {
    const fs::path& path = entry.path();
    std::string name;
    if (entry.is_directory(error)) {
      name = path.filename().string();
    } else if (path.extension() == kExtension) {
      name = path.stem().string();
    }
    if (IsPlainName(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string AdapterCache::PathOf(const std::string& name) const {
  std::error_code error;
  if (folder_.empty()) return "";
  const fs::path file = fs::path(folder_) / (name + kExtension);
  if (fs::is_regular_file(file, error)) return file.string();
  const fs::path dir = fs::path(folder_) / name;
  if (fs::is_directory(dir, error)) return dir.string();
  return "";
}

absl::StatusOr<std::shared_ptr<const DeviceAdapter>> AdapterCache::Get(const std::string& name) {
  if (!IsPlainName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("adapter name ", QuoteClientText(name),
                     " must be a plain file name (letters, digits, '.', '_', '-')"));
  }
  std::promise<Result> promise;
  std::shared_future<Result> pending;  // another caller's load of the same adapter
  {
    absl::MutexLock lock(&mu_);
    if (auto it = index_.find(name); it != index_.end()) {
      ++stats_.hits;
      lru_.splice(lru_.begin(), lru_, it->second);
      return *it->second;
    }
    if (auto it = loading_.find(name); it != loading_.end()) {
      ++stats_.hits;  // served by the load under way
      pending = it->second;
    } else {
      ++stats_.misses;
      loading_[name] = promise.get_future().share();
    }
  }
  if (pending.valid()) return pending.get();
  const auto start = std::chrono::steady_clock::now();
  const std::string path = PathOf(name);
  Result result = path.empty() ? Result(absl::NotFoundError(absl::StrCat(
                                     "adapter '", name, "' is not in the model's adapter folder")))
                               : loader_(name, path);
  if (result.ok() && (*result)->bytes() > byte_budget_) {
    result = absl::ResourceExhaustedError(absl::StrCat(
        "adapter '", name, "' needs ", (*result)->bytes(),
        " bytes on the device, more than the adapter cache's budget of ", byte_budget_));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    absl::MutexLock lock(&mu_);
    stats_.load_seconds += seconds;
    if (result.ok()) Insert(*result);
    loading_.erase(name);
  }
  promise.set_value(result);
  return result;
}

void AdapterCache::Insert(const std::shared_ptr<const DeviceAdapter>& adapter) {
  lru_.push_front(adapter);
  index_[adapter->name()] = lru_.begin();
  stats_.bytes += adapter->bytes();
  while (stats_.bytes > byte_budget_ && lru_.size() > 1) {
    const std::shared_ptr<const DeviceAdapter>& oldest = lru_.back();
    stats_.bytes -= oldest->bytes();
    ++stats_.evictions;
    index_.erase(oldest->name());
    lru_.pop_back();
  }
  stats_.entries = static_cast<int64_t>(lru_.size());
}

AdapterCache::Stats AdapterCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::unique_ptr<AdapterCache> MakeAdapterCache(const std::string& folder, int64_t byte_budget,
                                               torch::nn::Module* denoiser,
                                               const torch::Device& device, torch::Dtype dtype) {
  return std::make_unique<AdapterCache>(
      folder, byte_budget, [=](const std::string& name, const std::string& path) {
        return DeviceAdapter::Load(name, path, *denoiser, device, dtype);
      });
}

}  // namespace tlcm
