// `orion ui`'s HTTP server (docs/ui.md, "HTTP API" and "Security"): the embedded page and the
// JSON API over a CaptureRegistry and a UiBackend, on its own threads.
//
//   UiServerOptions options{.listen = {"127.0.0.1", 7070}, .token = *http::RandomToken()};
//   ASSIGN_OR_RETURN(auto server, UiServer::Start(options, registry, backend));
//   std::printf("%s\n", server->url().c_str());   // http://127.0.0.1:7070/?token=...
//
// Every request needs the token (Authorization: Bearer, or ?token=), a Host header that names
// the listen address or this host's loopback, and no Origin but the server's own.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "userspace/http/http_access.h"
#include "userspace/ui/capture_registry.h"
#include "userspace/ui/ui_backend.h"

namespace httplib {
class Server;
}

namespace orion::ui {

struct UiServerOptions {
  http::ListenAddress listen{"127.0.0.1", 7070};
  std::string token;
  size_t threads = 24;  // each open event stream holds one
  std::chrono::seconds heartbeat{15};  // a comment line on idle event streams
  // GET /api/functions answers kept per prefix (each is a round of calls to every node): for
  // how long, and how many prefixes at most (the oldest answer goes first).
  std::chrono::milliseconds functions_ttl{5000};
  size_t functions_cache_entries = 256;
};

class UiServer {
 public:
  // Binds now (errors: address in use, not an address of this host), serves on its own threads.
  // `registry` and `backend` must outlive the server.
  static StatusOr<std::unique_ptr<UiServer>> Start(UiServerOptions options,
                                                   CaptureRegistry& registry, UiBackend& backend);
  ~UiServer();  // ends the event streams, stops and joins
  UiServer(const UiServer&) = delete;
  UiServer& operator=(const UiServer&) = delete;

  int port() const { return port_; }
  // http://HOST:PORT/?token=TOKEN (a wildcard listen address is shown as this host's name).
  std::string url() const;

 private:
  UiServer() = default;
  void Route();
  // The backend's Functions(prefix), or its answer of less than functions_ttl ago.
  StatusOr<nlohmann::json> Functions(const std::string& prefix);

  UiServerOptions options_;
  CaptureRegistry* registry_ = nullptr;
  UiBackend* backend_ = nullptr;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::string url_host_;

  struct CachedFunctions {
    nlohmann::json answer;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex functions_mu_;
  std::map<std::string, CachedFunctions> functions_cache_;
};

}  // namespace orion::ui
