#include "server/shutdown_signal.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tlcm::server {
namespace {

int g_pipe[2] = {-1, -1};
std::atomic<int> g_signals{0};

// Async-signal-safe: an atomic increment, write() and _exit() only.
void OnSignal(int signal) {
  if (g_signals.fetch_add(1) > 0) _exit(1);
  const unsigned char byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] ssize_t n = write(g_pipe[1], &byte, 1);
}

}  // namespace

absl::Status InstallShutdownSignalHandlers() {
  if (g_pipe[0] < 0 && pipe2(g_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal : {SIGTERM, SIGINT}) {
    if (sigaction(signal, &action, nullptr) != 0) {
      return absl::InternalError(absl::StrCat("sigaction(", signal, "): ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

void RequestShutdown() {
  const unsigned char byte = 0;
  [[maybe_unused]] ssize_t n = write(g_pipe[1], &byte, 1);
}

int WaitForShutdownSignal() {
  unsigned char byte = 0;
  while (true) {
    const ssize_t n = read(g_pipe[0], &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

}  // namespace tlcm::server
