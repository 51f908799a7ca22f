#include "loaders/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace tlcm {
namespace {

torch::ScalarType TorchDtype(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kF32:
      return torch::kFloat32;
    case SafetensorsDtype::kF16:
      return torch::kFloat16;
    case SafetensorsDtype::kBF16:
      return torch::kBFloat16;
  }
  return torch::kFloat32;
}

// The safetensors dtype of a tensor we can write, or nullopt.
std::optional<SafetensorsDtype> WritableDtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return SafetensorsDtype::kF32;
    case torch::kFloat16:
      return SafetensorsDtype::kF16;
    case torch::kBFloat16:
      return SafetensorsDtype::kBF16;
    default:
      return std::nullopt;
  }
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
  if (file_bytes < 8) {  // too short to map usefully; the parser names the problem
    ::close(fd);
    return ParseSafetensorsHeader(std::string_view(), path).status();
  }
  void* map = mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": mmap failed: ", std::strerror(errno)));
  }
  auto header =
      ParseSafetensorsHeader(std::string_view(static_cast<const char*>(map), file_bytes), path);
  if (!header.ok()) {
    munmap(map, file_bytes);
    return header.status();
  }
  std::shared_ptr<SafetensorsFile> file(
      new SafetensorsFile(path, map, file_bytes, header->data_offset, std::move(header->entries)));
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
  const auto options = torch::TensorOptions().dtype(TorchDtype(e.dtype)).device(torch::kCPU);
  if (reinterpret_cast<uintptr_t>(data) % SafetensorsDtypeSize(e.dtype) != 0) {
    // Misaligned data (legal in the format): copy into an aligned tensor.
    torch::Tensor copy = torch::empty(e.shape, options);
    std::memcpy(copy.data_ptr(), data, e.end - e.begin);
    return copy;
  }
  std::shared_ptr<const SafetensorsFile> keep = self_.lock();
  return torch::from_blob(
      data, e.shape, [keep](void*) {}, options);
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, torch::Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<torch::Tensor> ordered;
  uint64_t offset = 0;
  for (const auto& [key, tensor] : tensors) {
    const std::optional<SafetensorsDtype> dtype = WritableDtype(tensor.scalar_type());
    if (!dtype) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", key, "': only F32, F16 and BF16 can be written"));
    }
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t n = t.numel() * t.element_size();
    header[key] = {{"dtype", SafetensorsDtypeName(*dtype)},
                   {"shape", t.sizes().vec()},
                   {"data_offsets", {offset, offset + n}}};
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
    out.write(static_cast<const char*>(t.data_ptr()),
              static_cast<std::streamsize>(t.numel() * t.element_size()));
  }
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace tlcm
