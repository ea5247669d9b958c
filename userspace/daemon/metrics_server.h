// The daemon's /metrics listener (docs/export.md): an HTTP server on its own threads that
// answers Prometheus scrapes with the watches' histograms. Off unless metrics_listen is set.
//
// A scrape must send `Authorization: Bearer <token>` (the token file's first line); anything
// else is 401. Only GET /metrics is served. The exposition is negotiated from Accept: native
// histograms in protobuf when the scraper asks for it (Prometheus does, with
// --enable-feature=native-histograms), else the text format with classic buckets.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/status.h"
#include "userspace/http/http_access.h"

namespace httplib {
class Server;
}

namespace orion::daemon {

// The listen address and its checks are shared with `orion ui` (userspace/http/http_access.h).
using http::IsLoopback;
using http::ListenAddress;
using http::ParseListenAddress;

// Reads a bearer token: the file's first line, at least 16 characters; the file must not be
// readable by others (mode & 007 == 0).
StatusOr<std::string> ReadTokenFile(const std::string& path);

class MetricsServer {
 public:
  // Renders the exposition: protobuf (true) or text (false).
  using Render = std::function<std::string(bool protobuf)>;

  // Binds now (errors here: address in use, bad address), serves on its own threads.
  static StatusOr<std::unique_ptr<MetricsServer>> Start(const ListenAddress& address,
                                                        std::string token, Render render);
  ~MetricsServer();  // stops and joins
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace orion::daemon
