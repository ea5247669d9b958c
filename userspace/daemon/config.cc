#include "userspace/daemon/config.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

namespace orion::daemon {
namespace {

constexpr size_t kMaxFileBytes = 64 * 1024;

// "orion.toml:3: " for a node of the document.
std::string Where(const std::string& origin, const toml::node& node) {
  const auto line = node.source().begin.line;
  return line > 0 ? origin + ":" + std::to_string(line) + ": " : origin + ": ";
}

StatusOr<std::string> ReadString(const toml::node& node) {
  if (const auto* s = node.as_string()) return s->get();
  return InvalidArgument("expected a \"quoted string\"");
}

StatusOr<bool> ReadBool(const toml::node& node) {
  if (const auto* b = node.as_boolean()) return b->get();
  return InvalidArgument("expected true or false");
}

StatusOr<uint32_t> ReadUint(const toml::node& node) {
  const auto* i = node.as_integer();
  if (i == nullptr || i->get() < 0 || i->get() > std::numeric_limits<uint32_t>::max()) {
    return InvalidArgument("expected a non-negative integer");
  }
  return static_cast<uint32_t>(i->get());
}

StatusOr<std::vector<std::string>> ReadStringArray(const toml::node& node) {
  const auto* array = node.as_array();
  if (array == nullptr) return InvalidArgument("expected an array of strings [\"a\", \"b\"]");
  std::vector<std::string> out;
  for (const toml::node& item : *array) {
    const auto* s = item.as_string();
    if (s == nullptr) return InvalidArgument("expected an array of strings [\"a\", \"b\"]");
    out.push_back(s->get());
  }
  return out;
}

Status ReadWatch(const toml::table& table, const std::string& origin, WatchSpec* watch) {
  for (const auto& [key, node] : table) {
    Status status;
    if (key == "patterns") {
      auto patterns = ReadStringArray(node);
      status = patterns.status();
      if (patterns.ok()) watch->patterns = *std::move(patterns);
    } else if (key == "node") {
      auto s = ReadString(node);
      status = s.status();
      if (s.ok()) watch->node = *s;
    } else if (key == "mode") {
      auto s = ReadString(node);
      status = s.status();
      if (s.ok() && *s != "auto" && *s != "probes" && *s != "tracer") {
        status =
            InvalidArgument("mode must be \"auto\", \"probes\" or \"tracer\", not \"", *s, "\"");
      }
      if (status.ok()) watch->mode = *s;
    } else if (key == "match_spec") {
      auto s = ReadString(node);
      status = s.status();
      if (s.ok()) watch->match_spec = *s;
    } else {
      status = InvalidArgument("unknown key '", key.str(), "' in [[watch]] (patterns, node, mode, ",
                               "match_spec)");
    }
    if (!status.ok()) return InvalidArgument(Where(origin, node), status.message());
  }
  if (watch->patterns.empty()) {
    return InvalidArgument(Where(origin, table), "a [[watch]] needs patterns = [\"m:f/a\", ...]");
  }
  return OkStatus();
}

Status SetKey(std::string_view key, const toml::node& value, const std::string& origin,
              DaemonConfig* c) {
  if (key == "watch") {
    const auto* array = value.as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      return InvalidArgument("watch must be [[watch]] tables");
    }
    for (const toml::node& item : *array) {
      WatchSpec watch;
      RETURN_IF_ERROR(ReadWatch(*item.as_table(), origin, &watch));
      c->watches.push_back(std::move(watch));
    }
    return OkStatus();
  }
  const auto assign = [&](auto& field, auto read) -> Status {
    auto got = read(value);
    if (!got.ok()) return got.status();
    field = *std::move(got);
    return OkStatus();
  };
  if (key == "name") return assign(c->name, ReadString);
  if (key == "longnames") return assign(c->longnames, ReadBool);
  if (key == "cookie_file") return assign(c->cookie_file, ReadString);
  if (key == "peers") return assign(c->peers, ReadStringArray);
  if (key == "discover") return assign(c->discover, ReadBool);
  if (key == "only_netns") return assign(c->only_netns, ReadBool);
  if (key == "max_captures") return assign(c->max_captures, ReadUint);
  if (key == "max_connections") return assign(c->max_connections, ReadUint);
  if (key == "listen") {
    RETURN_IF_ERROR(assign(c->listen, ReadString));
    return ParseDistAddress(c->listen).status();
  }
  if (key == "handshake_timeout_ms") return assign(c->handshake_timeout_ms, ReadUint);
  if (key == "max_pending_handshakes") return assign(c->max_pending_handshakes, ReadUint);
  if (key == "max_pending_handshakes_per_source") {
    return assign(c->max_pending_handshakes_per_source, ReadUint);
  }
  if (key == "max_duration_ms") return assign(c->max_duration_ms, ReadUint);
  if (key == "grace_ms") return assign(c->grace_ms, ReadUint);
  if (key == "max_watches") return assign(c->max_watches, ReadUint);
  if (key == "metrics_listen") return assign(c->metrics_listen, ReadString);
  if (key == "metrics_token_file") return assign(c->metrics_token_file, ReadString);
  if (key == "cookie") {
    return InvalidArgument("a cookie does not belong in the config file: put it in the ",
                           "cookie file (cookie_file, mode 0600, owned by root)");
  }
  return InvalidArgument("unknown setting '", key, "'");
}

}  // namespace

std::string DistAddress::text() const {
  char ip[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &address, ip, sizeof(ip));
  return port == 0 ? std::string(ip) : std::string(ip) + ":" + std::to_string(port);
}

StatusOr<DistAddress> ParseDistAddress(const std::string& text) {
  DistAddress out;
  const size_t colon = text.find(':');
  const std::string ip = text.substr(0, colon);
  if (::inet_pton(AF_INET, ip.c_str(), &out.address) != 1) {
    return InvalidArgument("listen address '", text, "' is not ADDR or ADDR:PORT with an IPv4 ",
                           "ADDR (127.0.0.1, 10.0.0.5, or 0.0.0.0 for every interface)");
  }
  if (colon != std::string::npos) {
    const std::string port = text.substr(colon + 1);
    char* end = nullptr;
    const long value = port.empty() ? -1 : std::strtol(port.c_str(), &end, 10);
    if (value < 0 || value > 65535 || *end != '\0') {
      return InvalidArgument("listen address '", text, "': the port must be 0..65535");
    }
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

DistAddress DefaultDistAddress(const std::string& host) {
  DistAddress out;
  out.address.s_addr = htonl(INADDR_LOOPBACK);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const in_addr ip = reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr;
    if ((ntohl(ip.s_addr) >> 24) == 127) {
      out.address = ip;
      break;
    }
  }
  ::freeaddrinfo(found);
  return out;
}

Status ParseConfigText(const std::string& text, const std::string& origin, DaemonConfig* config) {
  toml::parse_result parsed = toml::parse(text, origin);
  if (!parsed) {
    const toml::parse_error& error = parsed.error();
    return InvalidArgument(origin, ":", error.source().begin.line, ": ", error.description());
  }
  for (const auto& [key, node] : parsed.table()) {
    const Status status = SetKey(key.str(), node, origin, config);
    if (!status.ok()) {
      // Watch errors carry their own line; the others get the key's.
      return key == "watch" ? status : InvalidArgument(Where(origin, node), status.message());
    }
  }
  if (config->max_captures == 0 || config->max_connections == 0) {
    return InvalidArgument(origin, ": max_captures and max_connections must be at least 1");
  }
  if (config->handshake_timeout_ms < 100 || config->handshake_timeout_ms > 60000) {
    return InvalidArgument(origin, ": handshake_timeout_ms must be 100..60000");
  }
  if (config->max_pending_handshakes == 0 || config->max_pending_handshakes_per_source == 0) {
    return InvalidArgument(origin, ": max_pending_handshakes and ",
                           "max_pending_handshakes_per_source must be at least 1");
  }
  if (config->watches.size() > config->max_watches) {
    return InvalidArgument(origin, ": ", config->watches.size(), " [[watch]] tables, more than ",
                           "max_watches (", config->max_watches, ")");
  }
  return OkStatus();
}

Status LoadConfigFile(const std::string& path, bool missing_ok, DaemonConfig* config) {
  std::ifstream file(path);
  if (!file) {
    if (missing_ok && errno == ENOENT) return OkStatus();
    return NotFound("cannot read config file ", path);
  }
  std::stringstream text;
  text << file.rdbuf();
  if (text.str().size() > kMaxFileBytes) return InvalidArgument(path, ": larger than 64 KiB");
  return ParseConfigText(text.str(), path, config);
}

}  // namespace orion::daemon
