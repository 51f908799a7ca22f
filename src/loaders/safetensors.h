// Reader for the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header {key: {dtype, shape, data_offsets}}, then the data.
// The header is parsed by loaders/safetensors_header.h (torch-free); this file maps and views.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "loaders/safetensors_header.h"

namespace tlcm {

// A safetensors file memory-mapped copy-on-write: tensors view the mapping without copying, and
// writing into one never reaches the file. Open() validates the whole header
// (ParseSafetensorsHeader); every error names the file and, where there is one, the key.
// Supported dtypes: F32, F16, BF16 (weights of every published TLCM checkpoint); others are
// rejected at Open(). Thread-safe after Open().
class SafetensorsFile {
 public:
  using Entry = SafetensorsEntry;

  static absl::StatusOr<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, Entry>& entries() const { return entries_; }
  bool Contains(const std::string& key) const { return entries_.count(key) > 0; }

  // A CPU tensor viewing the mapping (kept alive by the tensor). NotFound for an unknown key.
  absl::StatusOr<torch::Tensor> Get(const std::string& key) const;

 private:
  SafetensorsFile(std::string path, void* map, uint64_t map_bytes, uint64_t data_offset,
                  std::map<std::string, Entry> entries);

  std::string path_;
  void* map_ = nullptr;
  uint64_t map_bytes_ = 0;
  uint64_t data_offset_ = 0;  // 8 + header length
  std::map<std::string, Entry> entries_;
  std::weak_ptr<SafetensorsFile> self_;
};

// Writes `tensors` (contiguous CPU copies are made as needed) as a safetensors file. Used by
// tests and tools; F32/F16/BF16 only.
absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, torch::Tensor>& tensors);

}  // namespace tlcm
