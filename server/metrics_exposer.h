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
// (> 8 KiB) request head 400. `Connection: close` after each answer.
//
// Hostile clients: a few threads answer connections side by side, so an idle or slow connection
// holds up one thread, not every scrape; each connection gets one deadline for all of it (sending
// its head and taking the answer), so a client that trickles a byte at a time is cut off there;
// accepted connections wait for a thread in a bounded queue, and beyond it new ones are closed at
// once, so file descriptors and memory stay bounded.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tlcm::server {

struct MetricsExposerOptions {
  // How long a connection has, from its acceptance, to send its request head and take the
  // answer; then it is closed.
  absl::Duration request_deadline = absl::Seconds(5);
  int answer_threads = 4;            // connections answered at the same time (>= 1)
  int max_waiting_connections = 64;  // accepted ones waiting for a thread (>= 1)
};

class MetricsExposer {
 public:
  using Options = MetricsExposerOptions;

  // Listens on `address` ("0.0.0.0", "127.0.0.1", "::", "[::]", a host name) and `port`
  // (0 = a free port) and starts serving `registry`.
  // Errors: UNAVAILABLE naming the address when it cannot resolve, bind or listen.
  static absl::StatusOr<std::unique_ptr<MetricsExposer>> Start(
      const std::string& address, int port, std::shared_ptr<prometheus::Registry> registry,
      Options options = {});

  // Stops accepting, closes the connections being served or waiting, and joins the threads.
  ~MetricsExposer();

  MetricsExposer(const MetricsExposer&) = delete;
  MetricsExposer& operator=(const MetricsExposer&) = delete;

  // The port actually bound.
  int port() const { return port_; }

 private:
  struct Connection {
    int fd = -1;
    absl::Time deadline;  // acceptance + request_deadline
  };

  MetricsExposer(int listen_fd, int wake_fd, int port,
                 std::shared_ptr<prometheus::Registry> registry, Options options);

  // The accepting thread: queues connections until the destructor signals `wake_fd_`.
  void Accept();
  // An answering thread: serves queued connections one at a time until stopped.
  void AnswerQueued();
  // Reads one request from `connection`, writes one answer, closes nothing (the caller does).
  void Answer(const Connection& connection);
  bool HasWorkOrStops() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int listen_fd_;
  const int wake_fd_;  // eventfd the destructor writes to stop every thread
  const int port_;
  const std::shared_ptr<prometheus::Registry> registry_;
  const Options options_;

  absl::Mutex mu_;
  std::deque<Connection> waiting_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread accept_thread_;
  std::vector<std::thread> answer_threads_;
};

}  // namespace tlcm::server
