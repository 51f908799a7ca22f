// Fuzzes the server's text-format configuration (server/server_config.h): the input is the
// file's text, parsed, resolved against one CPU device and turned into engine options.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/server_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = tlcm::server::ParseServerConfig(text, "/srv/tlcm", "fuzz.textproto");
  if (!config.ok()) return 0;
  auto resolved = tlcm::server::ResolveServerConfig(*std::move(config), {"cpu"});
  if (!resolved.ok()) return 0;
  const tlcm::engine::EngineOptions options = tlcm::server::MakeEngineOptions(*resolved);
  if (options.models.size() != static_cast<size_t>(resolved->models_size())) std::abort();
  if (tlcm::server::RequiredSendMessageBytes(*resolved) <= 0) std::abort();
  return 0;
}
