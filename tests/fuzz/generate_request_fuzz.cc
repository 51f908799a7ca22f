// Fuzzes GenerateRequest validation as the server runs it: the input is a serialized
// tlcm.v1.GenerateRequest, converted by server::ToEngineRequest and checked by
// engine::ValidateRequest against an SDXL-like model. What passes must be within the model's
// limits.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <google/protobuf/stubs/logging.h>

#include "engine/generation_request.h"
#include "server/tlcm_service.h"
#include "tlcm/v1/tlcm_service.pb.h"

// Quiet: protobuf logs every string field that is not UTF-8 (the parse then fails).
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tlcm::v1::GenerateRequest proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto request = tlcm::server::ToEngineRequest(proto, absl::InfiniteFuture());
  if (!request.ok()) return 0;

  tlcm::engine::ModelInfo info;
  info.name = "sdxl";
  info.family = "sdxl";
  info.samplers = {"tlcm", "lcm"};
  const tlcm::engine::RequestLimits limits;
  auto resolved = tlcm::engine::ValidateRequest(*request, info, limits);
  if (!resolved.ok()) return 0;
  const tlcm::engine::BatchKey& key = resolved->key;
  const bool within = key.steps >= info.min_steps && key.steps <= info.max_steps && key.width > 0 &&
                      key.height > 0 && key.width % info.size_multiple == 0 &&
                      key.height % info.size_multiple == 0 &&
                      static_cast<int64_t>(key.width) * key.height <= info.max_pixels &&
                      request->num_images >= 1 &&
                      request->num_images <= limits.max_images_per_request &&
                      std::isfinite(resolved->guidance_scale) && resolved->quality >= 1 &&
                      resolved->quality <= 100 && (key.sampler == "tlcm" || key.sampler == "lcm");
  if (!within) std::abort();
  return 0;
}
