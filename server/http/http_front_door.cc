#include "server/http/http_front_door.h"

#include <httplib.h>

#include <functional>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/http/connection_socket.h"
#include "server/http/edits_request.h"
#include "server/http/event_queue.h"
#include "server/http/http_error.h"
#include "server/http/images_request.h"
#include "server/http/openai_json.h"
#include "server/http/playground_page.h"
#include "server/request_log.h"
#include "server/tlcm_service.h"
#include "util/client_text.h"
#include "util/status_macros.h"

namespace tlcm::server {
namespace {

constexpr char kJson[] = "application/json";
// How often a handler waiting for the engine looks whether its client hung up.
constexpr absl::Duration kHangUpPoll = absl::Milliseconds(100);

void SetError(httplib::Response& res, const HttpError& error) {
  res.status = error.http_status;
  if (error.retry_after_s > 0) res.set_header("Retry-After", std::to_string(error.retry_after_s));
  if (error.http_status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(error.body, kJson);
}

// The answer to a status httplib set itself (malformed request, body too large, no route).
HttpError LibraryError(const httplib::Request& req, int http_status, size_t max_body_bytes) {
  switch (http_status) {
    case 413:
      return PayloadTooLargeError(max_body_bytes);
    case 404:
      return ToHttpError(absl::NotFoundError(absl::StrCat(
          "no route ", TruncateClientText(req.method, 16), " ", QuoteClientText(req.path),
          "; see /v1/models, /v1/images/generations, /v1/images/edits")));
    case 414:
      return ToHttpError(absl::InvalidArgumentError("request target: longer than 8 KiB"));
    default:
      break;
  }
  HttpError error = ToHttpError(absl::InvalidArgumentError(
      absl::StrCat("malformed HTTP request (the server answered ", http_status, ")")));
  error.http_status = http_status;
  return error;
}

std::optional<absl::string_view> Authorization(const httplib::Request& req) {
  auto it = req.headers.find("Authorization");
  if (it == req.headers.end()) return std::nullopt;
  return absl::string_view(it->second);
}

std::string Peer(const httplib::Request& req) {
  return absl::StrCat("http:", req.remote_addr, ":", req.remote_port);
}

}  // namespace

class HttpFrontDoor::Api {
 public:
  Api(const tlcm::v1::ServerConfig& config, engine::Engine* engine, ServerMetrics* metrics,
      const TokenAuthenticator* auth, RequestIdGenerator* request_ids, const ProbeState* probes)
      : engine_(engine),
        metrics_(metrics),
        auth_(auth),
        request_ids_(request_ids),
        probes_(probes),
        max_body_bytes_(static_cast<size_t>(config.http_max_body_bytes())),
        request_timeout_(config.http_request_timeout_seconds() > 0
                             ? absl::Seconds(config.http_request_timeout_seconds())
                             : absl::InfiniteDuration()) {}

  size_t max_body_bytes() const { return max_body_bytes_; }

  void Healthz(httplib::Response& res) const {
    const bool live = probes_->live.load();
    res.status = live ? 200 : 503;
    res.set_content(live ? "{\"status\":\"ok\"}" : "{\"status\":\"stalled\"}", kJson);
  }

  void Readyz(httplib::Response& res) const {
    const bool ready = probes_->ready.load();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\"}", kJson);
  }

  void Models(const httplib::Request& req, httplib::Response& res) const {
    if (absl::Status status = Authenticate(req); !status.ok()) {
      SetError(res, ToHttpError(status));
      return;
    }
    res.set_content(
        ModelsJson(engine_->ListModels(),
                   [this](const std::string& model) { return engine_->Adapters(model); }),
        kJson);
  }

  // POST /v1/images/generations (a JSON body) and POST /v1/images/edits (a multipart form).
  void Generations(const httplib::Request& req, httplib::Response& res) {
    Generate(req, res, [](const httplib::Request& r) { return ParseImagesRequest(r.body); });
  }
  void Edits(const httplib::Request& req, httplib::Response& res) {
    Generate(req, res, [](const httplib::Request& r) -> absl::StatusOr<ImagesRequest> {
      if (!r.is_multipart_form_data()) {
        return absl::InvalidArgumentError(
            "body: must be multipart/form-data with an \"image\" file and a \"prompt\"");
      }
      return ParseEditsRequest(r.files);
    });
  }

 private:
  absl::Status Authenticate(const httplib::Request& req) const {
    if (auth_ == nullptr) return absl::OkStatus();
    return auth_->CheckAuthorization(Authorization(req));
  }

  // Parses the body with `parse`, then submits it and answers (JSON or server-sent events).
  void Generate(const httplib::Request& req, httplib::Response& res,
                const std::function<absl::StatusOr<ImagesRequest>(const httplib::Request&)>& parse);

  // Ends a request the server refused before the engine saw it.
  void Reject(const RequestLogEntry& entry, httplib::Response& res) const {
    metrics_->OnRejectedByServer("", entry.status.code());
    LogRequest(entry);
    SetError(res, ToHttpError(entry.status));
  }

  void Answer(const httplib::Request& req, httplib::Response& res, RequestLogEntry entry,
              const ImagesSummary& summary, std::shared_ptr<EventQueue> events,
              engine::RequestHandle handle) const;
  void Stream(const httplib::Request& req, httplib::Response& res, RequestLogEntry entry,
              int64_t created, std::shared_ptr<EventQueue> events,
              engine::RequestHandle handle) const;

  engine::Engine* const engine_;
  ServerMetrics* const metrics_;
  const TokenAuthenticator* const auth_;
  RequestIdGenerator* const request_ids_;
  const ProbeState* const probes_;
  const size_t max_body_bytes_;
  const absl::Duration request_timeout_;
};

void HttpFrontDoor::Api::Generate(
    const httplib::Request& req, httplib::Response& res,
    const std::function<absl::StatusOr<ImagesRequest>(const httplib::Request&)>& parse) {
  const absl::Time arrival = absl::Now();
  RequestLogEntry entry;
  entry.peer = Peer(req);
  entry.request_id = req.get_header_value("X-Request-Id");
  absl::Status rejected = Authenticate(req);
  absl::StatusOr<ImagesRequest> parsed = absl::InternalError("not parsed");
  if (rejected.ok()) {
    parsed = parse(req);
    rejected = parsed.status();
  }
  if (rejected.ok()) {
    parsed->request.set_request_id(entry.request_id);
    entry.model = parsed->request.model();
    entry.num_images = parsed->request.num_images();
  }
  absl::StatusOr<engine::GenerationRequest> request = absl::InternalError("not converted");
  if (rejected.ok()) {
    request = ToEngineRequest(parsed->request, arrival + request_timeout_);
    rejected = request.status();
  }
  if (entry.request_id.empty() || !request.ok()) entry.request_id = request_ids_->Next();
  if (!rejected.ok()) {
    entry.status = rejected;
    Reject(entry, res);
    return;
  }
  if (!parsed->user.empty()) {
    LogEvent("http_user", absl::StrCat(entry.request_id, " user ", QuoteClientText(parsed->user)));
  }

  auto events = std::make_shared<EventQueue>();
  absl::StatusOr<engine::RequestHandle> handle = engine_->Submit(*std::move(request), events);
  if (!handle.ok()) {
    // The engine counted it (as its observer); only the log line is ours.
    entry.status = handle.status();
    LogRequest(entry);
    SetError(res, ToHttpError(handle.status()));
    return;
  }
  res.set_header("X-Request-Id", entry.request_id);
  const int64_t created = absl::ToUnixSeconds(arrival);
  if (parsed->stream) {
    Stream(req, res, std::move(entry), created, std::move(events), *handle);
    return;
  }
  ImagesSummary summary;
  summary.created = created;
  summary.model = entry.model;
  summary.seed = handle->seed();
  Answer(req, res, std::move(entry), summary, std::move(events), *handle);
}

namespace {

// What the events of a request tell the log line and the answer.
struct Progress {
  void Note(const GenerationEvent& event) {
    if (const auto* step = std::get_if<engine::StepEvent>(&event)) steps = step->total_steps;
    if (const auto* image = std::get_if<engine::GeneratedImage>(&event)) {
      width = image->width;
      height = image->height;
    }
  }
  int steps = 0;
  int width = 0;
  int height = 0;
};

// Fills in what the events told and the terminal status, and writes the log line.
void LogDone(RequestLogEntry& entry, const Progress& progress, const DoneEvent& done) {
  entry.steps = progress.steps;
  entry.width = progress.width;
  entry.height = progress.height;
  entry.metrics = done.metrics;
  entry.status = done.status;
  LogRequest(entry);
}

// The client is gone: cancels the request and logs how it ended (CANCELLED, or what it reached
// first). The engine delivers OnDone at once on a cancel.
void CancelAndLog(engine::RequestHandle handle, EventQueue& events, RequestLogEntry& entry,
                  Progress& progress) {
  handle.Cancel();
  while (true) {
    std::optional<GenerationEvent> event = events.Next(absl::InfiniteDuration());
    progress.Note(*event);
    if (const auto* done = std::get_if<DoneEvent>(&*event)) {
      LogDone(entry, progress, *done);
      return;
    }
  }
}

}  // namespace

void HttpFrontDoor::Api::Answer(const httplib::Request& req, httplib::Response& res,
                                RequestLogEntry entry, const ImagesSummary& summary,
                                std::shared_ptr<EventQueue> events,
                                engine::RequestHandle handle) const {
  const int socket = FindConnectionSocket(req.remote_addr, req.remote_port, req.local_port);
  std::vector<engine::GeneratedImage> images;
  Progress progress;
  while (true) {
    std::optional<GenerationEvent> event = events->Next(kHangUpPoll);
    if (!event.has_value()) {
      if (PeerHungUp(socket)) {
        CancelAndLog(handle, *events, entry, progress);
        return;  // nobody reads the answer
      }
      continue;
    }
    progress.Note(*event);
    if (auto* image = std::get_if<engine::GeneratedImage>(&*event)) {
      images.push_back(std::move(*image));
      continue;
    }
    const auto* done = std::get_if<DoneEvent>(&*event);
    if (done == nullptr) continue;
    LogDone(entry, progress, *done);
    if (!done->status.ok()) {
      SetError(res, ToHttpError(done->status));
      return;
    }
    ImagesSummary resolved = summary;
    resolved.steps = progress.steps;
    resolved.width = progress.width;
    resolved.height = progress.height;
    res.set_content(ImagesResponseJson(resolved, images, done->metrics), kJson);
    return;
  }
}

void HttpFrontDoor::Api::Stream(const httplib::Request& req, httplib::Response& res,
                                RequestLogEntry entry, int64_t created,
                                std::shared_ptr<EventQueue> events,
                                engine::RequestHandle handle) const {
  struct StreamState {
    RequestLogEntry entry;
    std::shared_ptr<EventQueue> events;
    engine::RequestHandle handle;
    int socket = -1;
    int64_t created = 0;
    int partial_images = 0;
    Progress progress;
    bool ended = false;
  };
  auto state = std::make_shared<StreamState>();
  state->entry = std::move(entry);
  state->events = std::move(events);
  state->handle = handle;
  state->socket = FindConnectionSocket(req.remote_addr, req.remote_port, req.local_port);
  state->created = created;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // proxies: pass each event on at once
  // Called on this connection's thread until it signals done or fails; one event per call.
  res.set_chunked_content_provider(
      "text/event-stream",
      [state](size_t /*offset*/, httplib::DataSink& sink) {
        if (state->ended) {
          sink.done();
          return true;
        }
        std::optional<GenerationEvent> event;
        while (!(event = state->events->Next(kHangUpPoll)).has_value()) {
          if (PeerHungUp(state->socket)) {
            CancelAndLog(state->handle, *state->events, state->entry, state->progress);
            state->ended = true;
            return false;
          }
        }
        state->progress.Note(*event);
        std::string text;
        if (const auto* queued = std::get_if<QueuedEvent>(&*event)) {
          text = QueuedSse(queued->position);
        } else if (const auto* started = std::get_if<engine::StartedEvent>(&*event)) {
          text = StartedSse(*started);
        } else if (const auto* step = std::get_if<engine::StepEvent>(&*event)) {
          text = ProgressSse(*step);
        } else if (const auto* preview = std::get_if<engine::PreviewEvent>(&*event)) {
          text = PartialImageSse(*preview, state->partial_images++, state->created);
        } else if (const auto* image = std::get_if<engine::GeneratedImage>(&*event)) {
          text = CompletedSse(*image, state->created);
        } else if (const auto* done = std::get_if<DoneEvent>(&*event)) {
          state->ended = true;
          LogDone(state->entry, state->progress, *done);
          text = done->status.ok() ? MetricsSse(done->metrics)
                                   : ErrorSse(ToHttpError(done->status).body);
        }
        if (!sink.write(text.data(), text.size())) {
          if (!state->ended) {
            CancelAndLog(state->handle, *state->events, state->entry, state->progress);
            state->ended = true;
          }
          return false;
        }
        return true;
      },
      [state](bool /*success*/) {
        // The connection ended before the stream did (e.g. the server stopped).
        if (!state->ended) {
          CancelAndLog(state->handle, *state->events, state->entry, state->progress);
          state->ended = true;
        }
      });
}

absl::StatusOr<std::unique_ptr<HttpFrontDoor>> HttpFrontDoor::Start(
    const tlcm::v1::ServerConfig& config, engine::Engine* engine, ServerMetrics* metrics,
    const TokenAuthenticator* auth, RequestIdGenerator* request_ids, const ProbeState* probes) {
  std::unique_ptr<HttpFrontDoor> door(new HttpFrontDoor());
  door->api_ = std::make_unique<Api>(config, engine, metrics, auth, request_ids, probes);
  Api* api = door->api_.get();
  const auto route = [api](httplib::Server& http) {
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      const absl::string_view page = PlaygroundPage();
      res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    });
    http.Get("/healthz",
             [api](const httplib::Request&, httplib::Response& res) { api->Healthz(res); });
    http.Get("/readyz",
             [api](const httplib::Request&, httplib::Response& res) { api->Readyz(res); });
    http.Get("/v1/models",
             [api](const httplib::Request& req, httplib::Response& res) { api->Models(req, res); });
    http.Post("/v1/images/generations", [api](const httplib::Request& req, httplib::Response& res) {
      api->Generations(req, res);
    });
    http.Post("/v1/images/edits",
              [api](const httplib::Request& req, httplib::Response& res) { api->Edits(req, res); });
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [api](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours
          SetError(res, LibraryError(req, res.status, api->max_body_bytes()));
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          SetError(res, ToHttpError(absl::InternalError("the HTTP handler failed")));
        });
  };
  HttpListener::Options options;
  options.threads = config.http_threads();
  options.io_timeout = absl::Seconds(config.http_io_timeout_seconds());
  options.max_body_bytes = static_cast<size_t>(config.http_max_body_bytes());
  TLCM_ASSIGN_OR_RETURN(
      door->listener_, HttpListener::Start("HTTP", config.http_listen_address(), config.http_port(),
                                           config.tls(), options, route));
  return door;
}

HttpFrontDoor::~HttpFrontDoor() = default;

}  // namespace tlcm::server
