#include "server/metrics_exposer.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <prometheus/text_serializer.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tlcm::server {
namespace {

constexpr size_t kMaxRequestHead = 8 * 1024;

absl::Status Unavailable(const std::string& where, absl::string_view what) {
  return absl::UnavailableError(
      absl::StrCat("metrics endpoint: cannot listen on ", where, ": ", what));
}

// A listening TCP socket on address:port, or an error naming them.
absl::StatusOr<int> Listen(const std::string& address, int port) {
  const std::string where = absl::StrCat(address, ":", port);
  std::string host(absl::StripSuffix(absl::StripPrefix(address, "["), "]"));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (const int rc =
          getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return Unavailable(where, gai_strerror(rc));
  }
  std::string last_error = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      last_error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) return Unavailable(where, last_error);
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

// Milliseconds left until `deadline` for poll(): 0 once it has passed.
int MillisUntil(absl::Time deadline) {
  return static_cast<int>(std::max<int64_t>(
      0, absl::ToInt64Milliseconds(absl::Ceil(deadline - absl::Now(), absl::Milliseconds(1)))));
}

// Waits until `fd` has `events`; false when `wake_fd` fired or `deadline` passed first.
bool WaitFor(int fd, short events, int wake_fd, absl::Time deadline) {
  pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
  int rc;
  do {
    rc = poll(fds, 2, MillisUntil(deadline));
  } while (rc < 0 && errno == EINTR);
  return rc > 0 && (fds[1].revents & POLLIN) == 0 && fds[0].revents != 0;
}

// Sends `data` without blocking past `deadline` (or the destructor's wake-up).
void WriteAll(int fd, absl::string_view data, int wake_fd, absl::Time deadline) {
  while (!data.empty()) {
    if (!WaitFor(fd, POLLOUT, wake_fd, deadline)) return;
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;  // the client went away
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string Response(int code, absl::string_view reason, absl::string_view content_type,
                     absl::string_view extra_headers, const std::string& body, bool with_body) {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\n", extra_headers,
                      "Connection: close\r\n\r\n", with_body ? body : "");
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsExposer>> MetricsExposer::Start(
    const std::string& address, int port, std::shared_ptr<prometheus::Registry> registry,
    Options options) {
  absl::StatusOr<int> listen_fd = Listen(address, port);
  if (!listen_fd.ok()) return listen_fd.status();
  const int wake_fd = eventfd(0, EFD_CLOEXEC);
  if (wake_fd < 0) {
    close(*listen_fd);
    return Unavailable(absl::StrCat(address, ":", port), std::strerror(errno));
  }
  options.answer_threads = std::max(1, options.answer_threads);
  options.max_waiting_connections = std::max(1, options.max_waiting_connections);
  return std::unique_ptr<MetricsExposer>(
      new MetricsExposer(*listen_fd, wake_fd, BoundPort(*listen_fd), std::move(registry), options));
}

MetricsExposer::MetricsExposer(int listen_fd, int wake_fd, int port,
                               std::shared_ptr<prometheus::Registry> registry, Options options)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port),
      registry_(std::move(registry)),
      options_(options) {
  for (int i = 0; i < options_.answer_threads; ++i) {
    answer_threads_.emplace_back([this] { AnswerQueued(); });
  }
  accept_thread_ = std::thread([this] { Accept(); });
}

MetricsExposer::~MetricsExposer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  // Never read: every poll on it returns at once from now on.
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  accept_thread_.join();
  for (std::thread& thread : answer_threads_) thread.join();
  absl::MutexLock lock(&mu_);
  for (const Connection& connection : waiting_) close(connection.fd);
  close(listen_fd_);
  close(wake_fd_);
}

void MetricsExposer::Accept() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents & POLLIN) return;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the peer gave up between poll and accept, or out of descriptors
    absl::MutexLock lock(&mu_);
    if (static_cast<int>(waiting_.size()) >= options_.max_waiting_connections) {
      close(fd);  // full: the client sees the connection closed at once
      continue;
    }
    waiting_.push_back(Connection{fd, absl::Now() + options_.request_deadline});
  }
}

bool MetricsExposer::HasWorkOrStops() const { return stopping_ || !waiting_.empty(); }

void MetricsExposer::AnswerQueued() {
  while (true) {
    Connection connection;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &MetricsExposer::HasWorkOrStops));
      if (stopping_) return;  // the destructor closes what still waits
      connection = waiting_.front();
      waiting_.pop_front();
    }
    Answer(connection);
    close(connection.fd);
  }
}

void MetricsExposer::Answer(const Connection& connection) {
  const int fd = connection.fd;
  const auto write_all = [&](absl::string_view data) {
    WriteAll(fd, data, wake_fd_, connection.deadline);
  };
  std::string head;
  char buffer[2048];
  while (!absl::StrContains(head, "\r\n\r\n") && head.size() <= kMaxRequestHead) {
    if (!WaitFor(fd, POLLIN, wake_fd_, connection.deadline)) return;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;
    head.append(buffer, static_cast<size_t>(n));
  }
  constexpr absl::string_view kText = "text/plain; charset=utf-8";
  const absl::string_view request_line = absl::string_view(head).substr(0, head.find("\r\n"));
  const std::vector<absl::string_view> parts = absl::StrSplit(request_line, ' ');
  if (head.size() > kMaxRequestHead || parts.size() != 3 ||
      !absl::StartsWith(parts[2], "HTTP/1.")) {
    write_all(Response(400, "Bad Request", kText, "", "malformed HTTP request\n", true));
    return;
  }
  const absl::string_view method = parts[0];
  const absl::string_view path = parts[1].substr(0, parts[1].find('?'));
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    write_all(Response(405, "Method Not Allowed", kText, "Allow: GET, HEAD\r\n",
                       "only GET and HEAD are served\n", true));
    return;
  }
  if (path != "/metrics") {
    write_all(Response(404, "Not Found", kText, "", "metrics are at /metrics\n", !head_only));
    return;
  }
  const std::string body = prometheus::TextSerializer().Serialize(registry_->Collect());
  write_all(Response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", "", body, !head_only));
}

}  // namespace tlcm::server
