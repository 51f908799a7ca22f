// The weights of one model component: a single safetensors file, or shards listed by a
// `*.safetensors.index.json` (diffusers and transformers layout).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "loaders/safetensors.h"

namespace tlcm {

class WeightStore {
 public:
  // Opens the weights in a component folder. Looks for, in order, with stem
  // `diffusion_pytorch_model` then `model`:
  //   <stem>.<variant>.safetensors, <stem>.safetensors.index.<variant>.json   (variant non-empty)
  //   <stem>.safetensors, <stem>.safetensors.index.json
  // A requested variant that is absent falls back to the plain files. NotFound names the folder
  // when nothing matches; shard and header errors name the file (and key).
  static absl::StatusOr<WeightStore> OpenComponent(const std::string& dir,
                                                   const std::string& variant = "");
  // Opens one safetensors file.
  static absl::StatusOr<WeightStore> OpenFile(const std::string& path);

  // Where the weights came from (the file, or the index file for shards): for messages.
  const std::string& source() const { return source_; }
  std::vector<std::string> Keys() const;
  bool Contains(const std::string& key) const { return file_of_.count(key) > 0; }
  // The file that holds `key` (empty when absent).
  std::string FileOf(const std::string& key) const;
  // A CPU tensor viewing the mapped file. NotFound names the source and key.
  absl::StatusOr<torch::Tensor> Get(const std::string& key) const;

 private:
  static absl::StatusOr<WeightStore> OpenIndex(const std::string& index_path);

  std::string source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, SafetensorsFile*> file_of_;
};

}  // namespace tlcm
