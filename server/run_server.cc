#include "server/run_server.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/request_log.h"
#include "server/server.h"
#include "server/shutdown_signal.h"

namespace tlcm::server {

int RunServerUntilSignal(const tlcm::v1::ServerConfig& resolved, engine::PipelineFactory factory) {
  auto server = Server::Start(resolved, std::move(factory));
  if (!server.ok()) {
    LogEvent("fatal", server.status().ToString());
    return 1;
  }
  std::atomic<bool> load_failed{false};
  std::thread readiness([&] {
    if (!(*server)->WaitUntilReady().ok()) {
      load_failed = true;
      RequestShutdown();
    }
  });
  const int signal = WaitForShutdownSignal();
  if (load_failed) {
    (*server)->Drain(absl::ZeroDuration());
  } else {
    LogEvent("signal", absl::StrCat("received signal ", signal, "; draining"));
    (*server)->Drain();
  }
  readiness.join();
  server->reset();
  return load_failed ? 1 : 0;
}

}  // namespace tlcm::server
