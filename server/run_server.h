// The life of a tlcm-server process after its configuration is resolved, shared by tlcm-server
// and the fake-pipeline server used for load tests.
#pragma once

#include "engine/engine.h"
#include "tlcm/v1/server_config.pb.h"

namespace tlcm::server {

// Starts a Server for `resolved` with `factory`, serves until SIGTERM / SIGINT, then drains with
// the configured grace and returns 0. Returns 1 when the server cannot start or a model fails to
// load (after a drain without grace). InstallShutdownSignalHandlers() must have been called.
// A signal that arrives while the models load ends the process once loading has ended.
int RunServerUntilSignal(const tlcm::v1::ServerConfig& resolved, engine::PipelineFactory factory);

}  // namespace tlcm::server
