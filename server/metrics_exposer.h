// MetricsExposer: the HTTP endpoint Prometheus scrapes, http://<address>:<port>/metrics.
//
// A deliberately small HTTP/1.1 server of our own, not prometheus-cpp's civetweb exposer:
// civetweb starts its threads with a fixed 100 KiB stack, and in a LibTorch process the static
// thread-local storage of LibTorch's libraries can be larger than that (it was with Debian's
// LibTorch 1.13: libtorch_cpu + OpenBLAS + glog), so glibc refuses to create them
// (pthread_create: EINVAL) and the exposer cannot start. Our one thread uses the default stack.
//
// Protocol: GET or HEAD of /metrics (query string ignored) answers 200 with the registry in the
// Prometheus text format 0.0.4; any other path 404; any other method 405; a malformed or oversized
// (> 8 KiB) request head 400. One connection at a time, `Connection: close` after each answer; a
// client gets kIoTimeout to send its request head and to take the answer, so a stalled client
// delays the next scrape by at most that. Scrapes are cheap next to Prometheus' intervals.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <prometheus/registry.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tlcm::server {

class MetricsExposer {
 public:
  static constexpr absl::Duration kIoTimeout = absl::Seconds(5);

  // Listens on `address` ("0.0.0.0", "127.0.0.1", "::", "[::]", a host name) and `port`
  // (0 = a free port) and starts serving `registry`.
  // Errors: UNAVAILABLE naming the address when it cannot resolve, bind or listen.
  static absl::StatusOr<std::unique_ptr<MetricsExposer>> Start(
      const std::string& address, int port, std::shared_ptr<prometheus::Registry> registry);

  // Stops accepting, ends the connection being served (if any) and joins the thread.
  ~MetricsExposer();

  MetricsExposer(const MetricsExposer&) = delete;
  MetricsExposer& operator=(const MetricsExposer&) = delete;

  // The port actually bound.
  int port() const { return port_; }

 private:
  MetricsExposer(int listen_fd, int wake_fd, int port,
                 std::shared_ptr<prometheus::Registry> registry);

  // The thread: accepts connections until the destructor signals `wake_fd_`.
  void Serve();
  // Reads one request from `fd`, writes one answer, closes nothing (the caller does).
  void Answer(int fd);

  const int listen_fd_;
  const int wake_fd_;  // eventfd the destructor writes to stop Serve()
  const int port_;
  const std::shared_ptr<prometheus::Registry> registry_;
  std::thread thread_;
};

}  // namespace tlcm::server
