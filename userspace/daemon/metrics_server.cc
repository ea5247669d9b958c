#include "userspace/daemon/metrics_server.h"

#include <sys/stat.h>

#include <fstream>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "userspace/metrics/prometheus.h"

namespace orion::daemon {

StatusOr<std::string> ReadTokenFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return NotFound("cannot read the metrics token file ", path,
                    ": it does not exist (create it: head -c 24 /dev/urandom | base64 > ", path,
                    " && chmod 600 ", path, ")");
  }
  if (st.st_mode & 007) {
    return FailedPrecondition("the metrics token file ", path,
                              " is readable by others: chmod o-rwx ", path);
  }
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) {
    return InvalidArgument("the metrics token in ", path,
                           " is shorter than 16 characters: use a random one");
  }
  return token;
}

StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const ListenAddress& address,
                                                              std::string token, Render render) {
  if (token.empty()) return InvalidArgument("the metrics listener needs a token");
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->server_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->server_;
  // Two workers; a slow or idle client is dropped after a few seconds.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  http.set_read_timeout(5, 0);
  http.set_write_timeout(10, 0);
  http.set_keep_alive_max_count(16);
  http.set_payload_max_length(4096);
  http.Get("/metrics", [token = std::move(token), render = std::move(render)](
                           const httplib::Request& request, httplib::Response& response) {
    if (!http::RequestHasToken(request, token, /*query_too=*/false)) {
      response.status = 401;
      response.set_header("WWW-Authenticate", "Bearer");
      response.set_content("orion: /metrics needs 'Authorization: Bearer <token>' "
                           "(the token file of metrics_token_file)\n",
                           "text/plain");
      return;
    }
    const bool protobuf =
        request.get_header_value("Accept").find("application/vnd.google.protobuf") !=
        std::string::npos;
    response.set_content(render(protobuf),
                         std::string(protobuf ? metrics::kProtobufContentType
                                              : metrics::kTextContentType));
  });
  http.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (response.status == 404) response.set_content("orion: only GET /metrics\n", "text/plain");
  });
  // Port 0: any free port (tests), reported by port().
  server->port_ = address.port == 0 ? http.bind_to_any_port(address.host)
                                    : (http.bind_to_port(address.host, address.port) ? address.port : -1);
  if (server->port_ <= 0) {
    return Unavailable("cannot listen for /metrics on ", address.host, ":", address.port,
                       " (in use, or not an address of this host)");
  }
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  spdlog::info("serving /metrics on {}:{}", address.host, server->port_);
  return server;
}

MetricsServer::~MetricsServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace orion::daemon
