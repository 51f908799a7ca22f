#include "tests/server/http_exchange.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"

namespace tlcm::testing {

HttpResponse HttpExchange(int port, const std::string& request) {
  HttpResponse out;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    ADD_FAILURE() << "cannot connect to port " << port;
    return out;
  }
  EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  close(fd);
  const size_t split = response.find("\r\n\r\n");
  out.headers = response.substr(0, split);
  if (split != std::string::npos) out.body = response.substr(split + 4);
  // "HTTP/1.1 200 OK": the code is the second word.
  const size_t space = response.find(' ');
  if (space != std::string::npos && absl::SimpleAtoi(response.substr(space + 1, 3), &out.status)) {
    return out;
  }
  out.status = 0;
  return out;
}

std::string HttpGet(int port, const std::string& path) {
  HttpResponse response =
      HttpExchange(port, "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(response.status, 200) << response.headers;
  return response.body;
}

}  // namespace tlcm::testing
