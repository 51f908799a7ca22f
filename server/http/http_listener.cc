#include "server/http/http_listener.h"

#include <sys/socket.h>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace tlcm::server {

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    const std::string& what, const std::string& address, int port, const tlcm::v1::TlsConfig& tls,
    const Options& options, const std::function<void(httplib::Server&)>& route) {
  std::unique_ptr<HttpListener> listener(new HttpListener());
  if (tls.cert_file().empty()) {
    listener->http_ = std::make_unique<httplib::Server>();
  } else {
    listener->http_ = std::make_unique<httplib::SSLServer>(
        tls.cert_file().c_str(), tls.key_file().c_str(),
        tls.client_ca_file().empty() ? nullptr : tls.client_ca_file().c_str());
  }
  if (!listener->http_->is_valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot load tls.cert_file ", tls.cert_file(), ", tls.key_file ",
                     tls.key_file(), " or tls.client_ca_file ", tls.client_ca_file()));
  }
  httplib::Server& http = *listener->http_;
  const size_t threads = static_cast<size_t>(std::max(1, options.threads));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  const auto io_timeout = absl::ToChronoMicroseconds(options.io_timeout);
  http.set_read_timeout(io_timeout);
  http.set_write_timeout(io_timeout);
  http.set_keep_alive_timeout(std::max<time_t>(1, absl::ToInt64Seconds(options.io_timeout)));
  http.set_keep_alive_max_count(1000);
  http.set_payload_max_length(options.max_body_bytes);
  // The library's default also sets SO_REUSEPORT, which would let a second server share a port
  // that is in use instead of failing to bind it.
  http.set_socket_options([](socket_t sock) {
    const int on = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  });
  route(http);

  const std::string host(absl::StripSuffix(absl::StripPrefix(address, "["), "]"));
  const int bound =
      port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat(what, ": cannot listen on ", address, ":", port));
  }
  listener->port_ = bound;
  listener->thread_ = std::thread([&http] { http.listen_after_bind(); });
  // stop() does nothing before the server runs, so Stop() right after Start must not race it.
  while (!http.is_running()) absl::SleepFor(absl::Milliseconds(1));
  return listener;
}

void HttpListener::Stop() {
  if (stopped_) return;
  stopped_ = true;
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

HttpListener::~HttpListener() { Stop(); }

}  // namespace tlcm::server
