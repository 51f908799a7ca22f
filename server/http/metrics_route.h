// GET /metrics: the Prometheus text format (0.0.4) of a registry, for an HttpListener of its own
// on ServerConfig.metrics_port (server.h starts it).
//
// Protocol: GET or HEAD of /metrics (query string ignored) answers 200 with the registry as it
// is at that moment; any other path or method 404 with a plain-text hint; a malformed request
// 400 (cpp-httplib's own parser). Keep-alive as the client asks.
#pragma once

#include <memory>

#include <prometheus/registry.h>

namespace httplib {
class Server;
}

namespace tlcm::server {

// Adds the route and the error answers to `http`. `registry` stays alive with the route.
void ServeMetrics(httplib::Server& http, std::shared_ptr<prometheus::Registry> registry);

}  // namespace tlcm::server
