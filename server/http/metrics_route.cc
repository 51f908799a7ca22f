#include "server/http/metrics_route.h"

#include <httplib.h>

#include <prometheus/text_serializer.h>

namespace tlcm::server {

void ServeMetrics(httplib::Server& http, std::shared_ptr<prometheus::Registry> registry) {
  http.Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus::TextSerializer().Serialize(registry->Collect()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        res.set_content(res.status == 404 ? "metrics are at /metrics\n" : "bad request\n",
                        "text/plain; charset=utf-8");
        return httplib::Server::HandlerResponse::Handled;
      }));
}

}  // namespace tlcm::server
