#include "loaders/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tlcm {
namespace {

absl::StatusOr<torch::ScalarType> DtypeFromName(const std::string& name) {
  if (name == "F32") return torch::kFloat32;
  if (name == "F16") return torch::kFloat16;
  if (name == "BF16") return torch::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype '", name, "' is not supported (expected F32, F16 or BF16)"));
}

const char* DtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    default: return nullptr;
  }
}

absl::Status Corrupt(const std::string& path, const std::string& key, const std::string& what) {
  if (key.empty()) return absl::DataLossError(absl::StrCat(path, ": ", what));
  return absl::DataLossError(absl::StrCat(path, ": tensor '", key, "': ", what));
}

// Parses one header entry; errors name the key.
absl::StatusOr<SafetensorsFile::Entry> ParseEntry(const std::string& path, const std::string& key,
                                                  const nlohmann::json& value,
                                                  uint64_t data_bytes) {
  if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
      !value.contains("data_offsets")) {
    return Corrupt(path, key, "header entry needs dtype, shape and data_offsets");
  }
  const auto& dtype = value["dtype"];
  const auto& shape = value["shape"];
  const auto& offsets = value["data_offsets"];
  if (!dtype.is_string()) return Corrupt(path, key, "dtype is not a string");
  auto scalar = DtypeFromName(dtype.get<std::string>());
  if (!scalar.ok()) return Corrupt(path, key, std::string(scalar.status().message()));
  SafetensorsFile::Entry entry;
  entry.dtype = *scalar;
  if (!shape.is_array()) return Corrupt(path, key, "shape is not an array");
  uint64_t numel = 1;
  for (const auto& d : shape) {
    if (!d.is_number_unsigned()) return Corrupt(path, key, "shape holds a non-natural number");
    const uint64_t dim = d.get<uint64_t>();
    if (dim != 0 && numel > (uint64_t{1} << 62) / dim) return Corrupt(path, key, "shape overflows");
    numel *= dim;
    entry.shape.push_back(static_cast<int64_t>(dim));
  }
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return Corrupt(path, key, "data_offsets must be two natural numbers");
  }
  entry.begin = offsets[0].get<uint64_t>();
  entry.end = offsets[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_bytes) {
    return Corrupt(path, key,
                   absl::StrCat("data_offsets [", entry.begin, ", ", entry.end,
                                ") lie outside the data section of ", data_bytes, " bytes"));
  }
  const uint64_t expected = numel * torch::elementSize(entry.dtype);
  if (entry.end - entry.begin != expected) {
    return Corrupt(path, key,
                   absl::StrCat("holds ", entry.end - entry.begin, " bytes but shape x dtype needs ",
                                expected));
  }
  return entry;
}

}  // namespace

SafetensorsFile::SafetensorsFile(std::string path, void* map, uint64_t map_bytes,
                                 uint64_t data_offset, std::map<std::string, Entry> entries)
    : path_(std::move(path)),
      map_(map),
      map_bytes_(map_bytes),
      data_offset_(data_offset),
      entries_(std::move(entries)) {}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) munmap(map_, map_bytes_);
}

absl::StatusOr<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat(path, ": cannot stat: ", std::strerror(errno)));
  }
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < 8) {
    ::close(fd);
    return Corrupt(path, "", "file is shorter than the 8-byte header length");
  }
  void* map = mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": mmap failed: ", std::strerror(errno)));
  }
  auto unmap_on_error = [&](absl::Status s) {
    munmap(map, file_bytes);
    return s;
  };
  uint64_t header_bytes = 0;
  const auto* bytes = static_cast<const unsigned char*>(map);
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | bytes[i];
  if (header_bytes > kMaxHeaderBytes) {
    return unmap_on_error(
        Corrupt(path, "", absl::StrCat("header length ", header_bytes, " exceeds the limit")));
  }
  if (header_bytes > file_bytes - 8) {
    return unmap_on_error(Corrupt(path, "", absl::StrCat("header length ", header_bytes,
                                                         " runs past the end of the file")));
  }
  nlohmann::json header = nlohmann::json::parse(
      bytes + 8, bytes + 8 + header_bytes, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return unmap_on_error(Corrupt(path, "", "header is not a JSON object"));
  }
  const uint64_t data_bytes = file_bytes - 8 - header_bytes;
  std::map<std::string, Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    auto entry = ParseEntry(path, it.key(), it.value(), data_bytes);
    if (!entry.ok()) return unmap_on_error(entry.status());
    entries.emplace(it.key(), *std::move(entry));
  }
  // Tensors may not share bytes.
  std::vector<std::pair<uint64_t, const std::string*>> spans;
  for (const auto& [key, e] : entries) {
    if (e.end > e.begin) spans.emplace_back(e.begin, &key);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    const Entry& prev = entries.at(*spans[i - 1].second);
    if (prev.end > spans[i].first) {
      return unmap_on_error(Corrupt(path, *spans[i].second,
                                    absl::StrCat("data overlaps tensor '", *spans[i - 1].second,
                                                 "'")));
    }
  }
  std::shared_ptr<SafetensorsFile> file(
      new SafetensorsFile(path, map, file_bytes, 8 + header_bytes, std::move(entries)));
  file->self_ = file;
  return file;
}

absl::StatusOr<torch::Tensor> SafetensorsFile::Get(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor '", key, "'"));
  }
  const Entry& e = it->second;
  char* data = static_cast<char*>(map_) + data_offset_ + e.begin;
  const auto options = torch::TensorOptions().dtype(e.dtype).device(torch::kCPU);
  if (reinterpret_cast<uintptr_t>(data) % torch::elementSize(e.dtype) != 0) {
    // Misaligned data (legal in the format): copy into an aligned tensor.
    torch::Tensor copy = torch::empty(e.shape, options);
    std::memcpy(copy.data_ptr(), data, e.end - e.begin);
    return copy;
  }
  std::shared_ptr<const SafetensorsFile> keep = self_.lock();
  return torch::from_blob(data, e.shape, [keep](void*) {}, options);
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, torch::Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<torch::Tensor> ordered;
  uint64_t offset = 0;
  for (const auto& [key, tensor] : tensors) {
    const char* name = DtypeName(tensor.scalar_type());
    if (name == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", key, "': only F32, F16 and BF16 can be written"));
    }
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t n = t.numel() * t.element_size();
    header[key] = {{"dtype", name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    ordered.push_back(t);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot create"));
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((text.size() >> (8 * i)) & 0xff);
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : ordered) {
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  }
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace tlcm
