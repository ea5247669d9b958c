// The daemon's settings: defaults, then /etc/orion/orion.toml (or --config), then flags.
//
// The file is TOML (https://toml.io), read with toml++: top-level keys for the settings, and a
// [[watch]] table for each standing capture the daemon keeps (docs/export.md):
//
//   listen = "10.0.0.5"
//   peers = ["orion@db2", "orion@db3"]
//   metrics_listen = "127.0.0.1:9464"
//
//   [[watch]]
//   patterns = ["Bar.Repo.get/1", "lists:sort/1"]
//   node = "app@web1"          # optional: only that node
//   mode = "auto"              # optional: auto | probes | tracer
//   match_spec = "[{['_'], [], []}]"   # optional: tracer mode's
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace orion::daemon {

// A standing capture, from a [[watch]] table or the protocol.
struct WatchSpec {
  std::vector<std::string> patterns;  // as the user wrote them: "lists:sort/1", "MyApp.Repo"
  std::string node;                   // "" = every BEAM of the host
  std::string mode = "auto";          // auto | probes | tracer
  std::string match_spec;             // "" = every call
};

struct DaemonConfig {
  std::string name = "orion";        // alive name, or alive@host
  bool longnames = false;
  std::string cookie_file = "/etc/orion/cookie";
  std::vector<std::string> peers;    // other daemons, "orion@host"
  bool discover = true;              // ask local BEAM nodes for nodes() to find peers
  bool only_netns = false;           // serve only BEAMs in the daemon's network namespace
  uint32_t max_captures = 4;         // captures running at once (more: {error, {busy, _}})
  uint32_t max_connections = 64;     // distribution connections served at once
  std::string listen;                // the distribution listener, "ADDR" or "ADDR:PORT";
                                     // "" = loopback (DefaultDistAddress)
  uint32_t handshake_timeout_ms = 2000;          // accept to authenticated, at most
  uint32_t max_pending_handshakes = 512;         // pending at once, in total (each an fd)
  uint32_t max_pending_handshakes_per_source = 256;  // ... from one source address
  uint32_t max_duration_ms = 600000; // longest capture accepted
  uint32_t grace_ms = 10000;         // how long after the duration a peer may take to answer
                                     // (it also loads, attaches and reads its capture)
  std::vector<WatchSpec> watches;    // standing captures, exported on /metrics
  uint32_t max_watches = 16;         // from the file and the protocol together
  std::string metrics_listen;        // "127.0.0.1:9464"; "" = no /metrics listener
  std::string metrics_token_file;    // bearer token a scrape must send; "" = none (loopback only)
};

// Where the distribution listener binds: an IPv4 address and a port (0: any free port, which
// epmd then publishes).
struct DistAddress {
  in_addr address{};
  uint16_t port = 0;
  std::string text() const;  // "127.0.0.1" or "10.0.0.5:4370"
};

// "ADDR" or "ADDR:PORT", ADDR an IPv4 address ("0.0.0.0": every interface).
StatusOr<DistAddress> ParseDistAddress(const std::string& text);

// The loopback address the daemon listens on unless told otherwise: the one `host` (the node
// name's host) resolves to when that is a loopback address (Debian maps the host name to
// 127.0.1.1), so that local shells reach orion@host by its name; else 127.0.0.1.
DistAddress DefaultDistAddress(const std::string& host);

inline constexpr const char* kDefaultConfigFile = "/etc/orion/orion.toml";

// Reads the file. Unknown keys are errors (they name the line), and so is a `cookie` key (a
// cookie belongs in the 0600 cookie file only). `missing_ok`: a missing file at the default path
// is not an error.
Status LoadConfigFile(const std::string& path, bool missing_ok, DaemonConfig* config);

// Parses TOML text (for tests); `origin` names the source in errors.
Status ParseConfigText(const std::string& text, const std::string& origin, DaemonConfig* config);

}  // namespace orion::daemon
