#include "userspace/ui/ui_server.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "userspace/ui/embedded_assets.h"

namespace orion::ui {

using nlohmann::json;

namespace {

constexpr char kJson[] = "application/json";
constexpr size_t kMaxBodyBytes = 64 * 1024;
constexpr size_t kMaxPrefixBytes = 256;
// What the page needs (docs/ui.md, "Security"): its inline script and styles, its own API.
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

void SendError(httplib::Response& response, int status, const std::string& message) {
  response.status = status;
  response.set_content(json{{"error", message}}.dump(), kJson);
}

void SendJson(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(body.dump(), kJson);
}

int HttpStatusOf(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

void SendStatus(httplib::Response& response, const Status& status) {
  SendError(response, HttpStatusOf(status), status.message());
}

// Stops the stream of capture `id` if it runs; NotFound for a capture the registry does not hold.
Status StopIfRunning(CaptureRegistry& registry, UiBackend& backend, const std::string& id) {
  const auto state = registry.State(id);
  if (!state) return NotFound("no capture ", id);
  return *state == "running" ? backend.StopCapture(id) : OkStatus();
}

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

bool IsIpLiteral(const std::string& host) {
  in6_addr v6{};
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

// "127.0.0.1:7070" -> {"127.0.0.1", "7070"}; "[::1]:7070" -> {"::1", "7070"}.
std::pair<std::string, std::string> SplitHostHeader(const std::string& value) {
  if (!value.empty() && value.front() == '[') {
    const size_t close = value.find(']');
    if (close == std::string::npos) return {value, ""};
    const std::string port = close + 1 < value.size() && value[close + 1] == ':'
                                 ? value.substr(close + 2)
                                 : "";
    return {value.substr(1, close - 1), port};
  }
  const size_t colon = value.rfind(':');
  if (colon == std::string::npos) return {value, ""};
  return {value.substr(0, colon), value.substr(colon + 1)};
}

// GET /api/status "memory": what the kept windows hold, and what the allocator holds for them
// (docs/ui.md; scripts/bench/ui_goal.sh samples it to tell retention from the allocator's own).
json MemoryJson(const KeptWindow& kept) {
  const struct mallinfo2 heap = ::mallinfo2();
  return {{"kept_intervals", kept.intervals},
          {"kept_events", kept.events},
          {"kept_bytes", kept.bytes},
          {"heap_in_use_bytes", heap.uordblks + heap.hblkhd},
          {"heap_free_bytes", heap.fordblks},
          {"heap_mmapped_bytes", heap.hblkhd},
          {"heap_arena_bytes", heap.arena}};
}

}  // namespace

StatusOr<std::unique_ptr<UiServer>> UiServer::Start(UiServerOptions options,
                                                    CaptureRegistry& registry, UiBackend& backend) {
  if (options.token.size() < 16) return InvalidArgument("orion ui needs a token of 16+ characters");
  std::unique_ptr<UiServer> server(new UiServer());
  server->options_ = std::move(options);
  server->registry_ = &registry;
  server->backend_ = &backend;
  server->server_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->server_;
  const size_t threads = server->options_.threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_read_timeout(10, 0);
  http.set_write_timeout(10, 0);
  http.set_payload_max_length(kMaxBodyBytes);
  const http::ListenAddress& listen = server->options_.listen;
  server->port_ = listen.port == 0
                      ? http.bind_to_any_port(listen.host)
                      : (http.bind_to_port(listen.host, listen.port) ? listen.port : -1);
  if (server->port_ <= 0) {
    return Unavailable("cannot listen on ", http::UrlHost(listen.host), ":", listen.port,
                       " (in use, or not an address of this host): choose another with --listen");
  }
  server->url_host_ = http::UrlHost(http::IsWildcard(listen.host) ? HostName() : listen.host);
  server->Route();
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  return server;
}

UiServer::~UiServer() {
  if (registry_ != nullptr) registry_->Shutdown();  // event streams return at once
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string UiServer::url() const {
  return "http://" + url_host_ + ":" + std::to_string(port_) + "/?token=" + options_.token;
}

StatusOr<json> UiServer::Functions(const std::string& prefix) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(functions_mu_);
    const auto it = functions_cache_.find(prefix);
    if (it != functions_cache_.end() && now - it->second.at < options_.functions_ttl) {
      return it->second.answer;
    }
  }
  // Asked without the lock: the cluster's answer takes up to seconds. Errors are not kept.
  ASSIGN_OR_RETURN(json answer, backend_->Functions(prefix));
  std::lock_guard lock(functions_mu_);
  functions_cache_[prefix] = CachedFunctions{answer, now};
  while (functions_cache_.size() > std::max<size_t>(options_.functions_cache_entries, 1)) {
    auto oldest = functions_cache_.begin();
    for (auto it = functions_cache_.begin(); it != functions_cache_.end(); ++it) {
      if (it->second.at < oldest->second.at) oldest = it;
    }
    functions_cache_.erase(oldest);
  }
  return answer;
}

void UiServer::Route() {
  httplib::Server& http = *server_;
  CaptureRegistry& registry = *registry_;
  UiBackend& backend = *backend_;

  // Host (DNS rebinding), Origin (other sites' pages) and the token, before anything else.
  http.set_pre_routing_handler([this](const httplib::Request& request,
                                      httplib::Response& response) {
    response.set_header("Cache-Control", "no-store");
    response.set_header("Referrer-Policy", "no-referrer");  // the URL carries the token
    response.set_header("X-Content-Type-Options", "nosniff");
    const std::string host_header = request.get_header_value("Host");
    const auto [host, port] = SplitHostHeader(host_header);
    const http::ListenAddress& listen = options_.listen;
    bool host_ok = host == "localhost" || host == "127.0.0.1" || host == "::1" ||
                   (!http::IsWildcard(listen.host) && host == listen.host);
    if (http::IsWildcard(listen.host)) {
      const std::string name = HostName();
      host_ok = host_ok || IsIpLiteral(host) || host == name || host == name.substr(0, name.find('.'));
    }
    host_ok = host_ok && (port.empty() || port == std::to_string(port_));
    if (!host_ok) {
      SendError(response, 403,
                "Host '" + host_header + "' is not this server's address: open the URL orion ui "
                "printed");
      return httplib::Server::HandlerResponse::Handled;
    }
    const std::string origin = request.get_header_value("Origin");
    if (request.has_header("Origin") && origin != "http://" + host_header) {
      SendError(response, 403, "cross-origin request from '" + origin + "' refused");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!http::RequestHasToken(request, options_.token, /*query_too=*/true)) {
      response.set_header("WWW-Authenticate", "Bearer");
      SendError(response, 401,
                request.has_param("token") || request.has_header("Authorization")
                    ? "wrong token: open the URL orion ui printed (each run has a new token)"
                    : "missing token: open the URL orion ui printed (with its ?token=), or send "
                      "'Authorization: Bearer <token>'");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  const auto page = [](const httplib::Request& request, httplib::Response& response) {
    const auto asset = EmbeddedAsset(request.path);
    if (!asset) return SendError(response, 404, "no such page");
    response.set_header("Content-Security-Policy", kContentSecurityPolicy);
    response.set_content(std::string(asset->body), std::string(asset->content_type));
  };
  http.Get("/", page);
  http.Get("/index.html", page);

  http.Post("/api/captures", [&registry, &backend](const httplib::Request& request,
                                                   httplib::Response& response) {
    const json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return SendError(response, 400, "the body is not JSON");
    auto options = ParseCaptureOptions(body);
    if (!options.ok()) return SendStatus(response, options.status());
    auto id = registry.Add(*options, static_cast<uint64_t>(
                                         std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count()));
    if (!id.ok()) return SendStatus(response, id.status());
    const Status started = backend.StartCapture(*id, *options);
    if (!started.ok()) {
      registry.Remove(*id);
      return SendStatus(response, started);
    }
    SendJson(response, 201, {{"id", *id}});
  });
  http.Get("/api/captures", [&registry](const httplib::Request&, httplib::Response& response) {
    SendJson(response, 200, registry.List());
  });
  http.Get(R"(/api/captures/([^/]+))", [&registry, &backend](const httplib::Request& request,
                                                              httplib::Response& response) {
    auto summary = registry.Summary(request.matches[1]);
    if (!summary) return SendError(response, 404, "no capture " + std::string(request.matches[1]));
    (*summary)["daemon"] = backend.DaemonStatus().value("daemon", "");
    SendJson(response, 200, *summary);
  });
  http.Get(R"(/api/captures/([^/]+)/events)", [this, &registry](const httplib::Request& request,
                                                                 httplib::Response& response) {
    std::shared_ptr<CaptureRegistry::Capture> capture = registry.Find(request.matches[1]);
    if (!capture) return SendError(response, 404, "no capture " + std::string(request.matches[1]));
    std::optional<uint64_t> after;
    const std::string last = request.get_header_value("Last-Event-ID");
    if (!last.empty()) {
      try {
        after = std::stoull(last);
      } catch (const std::exception&) {
        after.reset();
      }
    }
    const auto heartbeat = options_.heartbeat;
    response.set_header("X-Accel-Buffering", "no");
    response.set_chunked_content_provider(
        "text/event-stream",
        [&registry, capture, cursor = ResumeCursor(after), heartbeat,
         idle = std::chrono::steady_clock::now()](size_t, httplib::DataSink& sink) mutable {
          // A batch is bounded (RegistryLimits::max_batch_bytes) and its events are shared with
          // the registry: each is formatted and written on its own, so a replay of the whole
          // window never sits in memory twice.
          CaptureRegistry::Batch batch =
              registry.Next(*capture, cursor, std::chrono::milliseconds(1000));
          const auto now = std::chrono::steady_clock::now();
          for (const auto& event : batch.events) {
            const std::string text = FormatEvent(*event);
            if (!sink.write(text.data(), text.size())) return false;
            idle = now;
          }
          if (batch.events.empty() && now - idle >= heartbeat) {
            static constexpr std::string_view kKeepAlive = ": keep-alive\n\n";
            if (!sink.write(kKeepAlive.data(), kKeepAlive.size())) return false;
            idle = now;
          }
          if (batch.closed) {
            sink.done();
            return true;
          }
          return sink.is_writable();
        });
  });
  http.Post(R"(/api/captures/([^/]+)/stop)", [&registry, &backend](const httplib::Request& request,
                                                                    httplib::Response& response) {
    const std::string id = request.matches[1];
    const Status stopped = StopIfRunning(registry, backend, id);
    if (!stopped.ok()) return SendStatus(response, stopped);
    if (registry.State(id) == "running") {
      registry.SetState(id, "stopped", "stopped from the console");
    }
    SendJson(response, 200, {{"id", id}, {"state", registry.State(id).value_or("deleted")}});
  });
  http.Post(R"(/api/captures/([^/]+)/restart)", [&registry, &backend](
                                                    const httplib::Request& request,
                                                    httplib::Response& response) {
    const std::string id = request.matches[1];
    const Status stopped = StopIfRunning(registry, backend, id);
    if (!stopped.ok()) return SendStatus(response, stopped);
    const auto options = registry.Options(id);
    if (!options) return SendError(response, 404, "no capture " + id);
    const Status started = backend.StartCapture(id, *options);
    if (!started.ok()) return SendStatus(response, started);
    registry.SetState(id, "running", "");
    SendJson(response, 200, {{"id", id}, {"state", "running"}});
  });
  http.Delete(R"(/api/captures/([^/]+))", [&registry, &backend](const httplib::Request& request,
                                                                 httplib::Response& response) {
    const std::string id = request.matches[1];
    const Status stopped = StopIfRunning(registry, backend, id);
    if (stopped.code() == StatusCode::kNotFound) return SendStatus(response, stopped);
    // Freed either way: a daemon that cannot be told stops the stream with the connection.
    if (!stopped.ok()) spdlog::warn("capture {}: {}", id, stopped.ToString());
    registry.Remove(id);
    response.status = 204;
  });

  http.Get("/api/functions", [this](const httplib::Request& request,
                                    httplib::Response& response) {
    const std::string prefix = request.get_param_value("prefix");
    if (prefix.size() > kMaxPrefixBytes) {
      return SendError(response, 400, "prefix longer than 256 bytes");
    }
    auto functions = Functions(prefix);
    if (!functions.ok()) return SendStatus(response, functions.status());
    SendJson(response, 200, *functions);
  });
  http.Get("/api/nodes", [&backend](const httplib::Request&, httplib::Response& response) {
    auto nodes = backend.Nodes();
    if (!nodes.ok()) return SendStatus(response, nodes.status());
    SendJson(response, 200, *nodes);
  });
  http.Get("/api/status", [&backend, &registry](const httplib::Request&,
                                                 httplib::Response& response) {
    json status = backend.DaemonStatus();
    status["memory"] = MemoryJson(registry.Kept());
    SendJson(response, 200, status);
  });

  http.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    if (response.status == 404) {
      SendError(response, 404, "no such path: " + request.method + " " + request.path +
                                   " (docs/ui.md lists the API)");
    } else if (response.status == 413) {
      SendError(response, 413, "the body is larger than 64 KiB");
    } else if (response.status == 400) {
      SendError(response, 400,
                "bad request (a POST without a body still needs Content-Length: 0; curl -d '')");
    } else {
      SendError(response, response.status, "HTTP error " + std::to_string(response.status));
    }
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& response,
                                std::exception_ptr error) {
    std::string what = "internal error";
    try {
      if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    SendError(response, 500, what);
  });
}

}  // namespace orion::ui
