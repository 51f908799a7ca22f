// A raw HTTP exchange over loopback TCP for the metrics endpoint tests.
#pragma once

#include <string>

namespace tlcm::testing {

struct HttpResponse {
  int status = 0;       // 0 when no status line came back
  std::string headers;  // the status line and headers, as received
  std::string body;
};

// Connects to 127.0.0.1:`port`, sends `request` verbatim, reads until the server closes.
// A failed connect is a test failure and returns status 0.
HttpResponse HttpExchange(int port, const std::string& request);

// GET `path` with HTTP/1.0; expects 200 (a test failure otherwise) and returns the body.
std::string HttpGet(int port, const std::string& path);

}  // namespace tlcm::testing
