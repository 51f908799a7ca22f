#include "server/request_ids.h"

#include "absl/random/random.h"
#include "absl/strings/str_format.h"

namespace tlcm::server {

RequestIdGenerator::RequestIdGenerator()
    : prefix_(absl::Uniform<uint64_t>(absl::BitGen()) & 0xffffffffu) {}

std::string RequestIdGenerator::Next() {
  return absl::StrFormat("%08x-%d", prefix_, next_.fetch_add(1));
}

}  // namespace tlcm::server
