// Request ids the server makes up for calls that bring none: "<8 hex digits>-<counter>", the
// prefix random per process so that ids from restarts do not collide. Shared by the gRPC and
// HTTP front doors, so one process never hands out an id twice. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace tlcm::server {

class RequestIdGenerator {
 public:
  RequestIdGenerator();
  std::string Next();

 private:
  const uint64_t prefix_;
  std::atomic<uint64_t> next_{1};
};

}  // namespace tlcm::server
