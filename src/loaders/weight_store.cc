#include "loaders/weight_store.h"

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "loaders/json_config.h"
#include "util/status_macros.h"

namespace tlcm {

namespace fs = std::filesystem;

absl::StatusOr<WeightStore> WeightStore::OpenFile(const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  WeightStore store;
  store.source_ = path;
  for (const auto& [key, entry] : file->entries()) store.file_of_[key] = file.get();
  store.files_.push_back(std::move(file));
  return store;
}

absl::StatusOr<WeightStore> WeightStore::OpenIndex(const std::string& index_path) {
  TLCM_ASSIGN_OR_RETURN(nlohmann::json index, ReadJsonFile(index_path));
  if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": no weight_map object"));
  }
  WeightStore store;
  store.source_ = index_path;
  std::map<std::string, SafetensorsFile*> shard_files;
  const fs::path dir = fs::path(index_path).parent_path();
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": weight_map['", it.key(), "'] is not a file name"));
    }
    const std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_path, ": shard '", shard, "' must be a file name in the index's folder"));
    }
    auto found = shard_files.find(shard);
    if (found == shard_files.end()) {
      TLCM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open((dir / shard).string()));
      found = shard_files.emplace(shard, file.get()).first;
      store.files_.push_back(std::move(file));
    }
    if (!found->second->Contains(it.key())) {
      return absl::DataLossError(absl::StrCat(index_path, ": tensor '", it.key(), "' is mapped to ",
                                              shard, ", which lacks it"));
    }
    store.file_of_[it.key()] = found->second;
  }
  return store;
}

absl::StatusOr<WeightStore> WeightStore::OpenComponent(const std::string& dir,
                                                       const std::string& variant) {
  std::vector<std::string> variants;
  if (!variant.empty()) variants.push_back(variant);
  variants.push_back("");
  for (const std::string& v : variants) {
    const std::string infix = v.empty() ? "" : "." + v;
    for (const char* stem : {"diffusion_pytorch_model", "model"}) {
      const fs::path single = fs::path(dir) / absl::StrCat(stem, infix, ".safetensors");
      if (fs::exists(single)) return OpenFile(single.string());
      const fs::path index =
          fs::path(dir) / absl::StrCat(stem, ".safetensors.index", infix, ".json");
      if (fs::exists(index)) return OpenIndex(index.string());
    }
  }
  return absl::NotFoundError(
      absl::StrCat(dir,
                   ": no safetensors weights (diffusion_pytorch_model[.variant].safetensors, "
                   "model[.variant].safetensors or a *.safetensors.index.json)"));
}

std::vector<std::string> WeightStore::Keys() const {
  std::vector<std::string> keys;
  keys.reserve(file_of_.size());
  for (const auto& [key, file] : file_of_) keys.push_back(key);
  return keys;
}

std::string WeightStore::FileOf(const std::string& key) const {
  auto it = file_of_.find(key);
  return it == file_of_.end() ? std::string() : it->second->path();
}

absl::StatusOr<torch::Tensor> WeightStore::Get(const std::string& key) const {
  auto it = file_of_.find(key);
  if (it == file_of_.end()) {
    return absl::NotFoundError(absl::StrCat(source_, ": no tensor '", key, "'"));
  }
  return it->second->Get(key);
}

}  // namespace tlcm
