// Fuzzes the safetensors header parser (loaders/safetensors_header.h) with whole files: the
// input is the file's bytes. Every accepted header must describe tensors inside the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loaders/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  auto header = tlcm::ParseSafetensorsHeader(file, "fuzz.safetensors");
  if (!header.ok()) return 0;
  for (const auto& [key, entry] : header->entries) {
    if (entry.begin > entry.end || header->data_offset + entry.end > size) std::abort();
  }
  return 0;
}
