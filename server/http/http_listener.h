// One cpp-httplib server bound to an address and port and served on a thread of its own: the
// HTTP front door (http_front_door.h) and the Prometheus endpoint (metrics_route.h) each run
// one. Debian's cpp-httplib starts its connection threads as ordinary std::threads (default
// stack), so it runs inside a LibTorch process, where civetweb's fixed 100 KiB stacks did not.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tlcm/v1/server_config.pb.h"

namespace httplib {
class Server;
}

namespace tlcm::server {

struct HttpListenerOptions {
  int threads = 4;  // connections served at the same time (>= 1); more wait for a thread
  // How long one read or write waits for the peer; idle keep-alive connections close after it.
  absl::Duration io_timeout = absl::Seconds(10);
  size_t max_body_bytes = 1 << 20;  // larger bodies: 413, not read
};

class HttpListener {
 public:
  using Options = HttpListenerOptions;

  // Creates the server (plaintext when `tls.cert_file` is empty, else HTTPS with its key and,
  // when `tls.client_ca_file` is set, required client certificates), lets `route` add its
  // handlers, binds `address`:`port` (0 = a free port; "[::1]" style brackets allowed) and
  // serves. `what` names the listener in errors. Errors: INVALID_ARGUMENT when the TLS files
  // cannot be loaded, UNAVAILABLE naming the address when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(
      const std::string& what, const std::string& address, int port, const tlcm::v1::TlsConfig& tls,
      const Options& options, const std::function<void(httplib::Server&)>& route);

  // Stop().
  ~HttpListener();

  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  int port() const { return port_; }

  // Stops accepting and waits for the open connections to end (an answer being written is
  // finished; idle keep-alive connections close within the I/O timeout). Idempotent.
  void Stop();

 private:
  HttpListener() = default;

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace tlcm::server
