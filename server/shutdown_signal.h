// SIGTERM / SIGINT as a waitable event, so that main() (and the tests) can drain the server on a
// signal from an ordinary thread instead of inside a signal handler.
#pragma once

#include "absl/status/status.h"

namespace tlcm::server {

// Installs handlers for SIGTERM and SIGINT that wake WaitForShutdownSignal(). A second signal
// while the first is being handled ends the process at once with exit code 1 (for an operator
// who does not want to wait for the drain). Call once, early in main. Errors: INTERNAL when the
// pipe or handlers cannot be set up.
absl::Status InstallShutdownSignalHandlers();

// Blocks until SIGTERM or SIGINT arrives (after InstallShutdownSignalHandlers) or
// RequestShutdown() is called; returns the signal number, or 0 for RequestShutdown.
int WaitForShutdownSignal();

// Wakes WaitForShutdownSignal() as a signal would (e.g. when loading the models failed).
// Thread-safe; after InstallShutdownSignalHandlers.
void RequestShutdown();

}  // namespace tlcm::server
