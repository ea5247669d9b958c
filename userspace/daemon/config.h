// The daemon's settings: defaults, then /etc/orion/orion.toml (or --config), then flags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace orion::daemon {

struct DaemonConfig {
  std::string name = "orion";        // alive name, or alive@host
  bool longnames = false;
  std::string cookie_file = "/etc/orion/cookie";
  std::vector<std::string> peers;    // other daemons, "orion@host"
  bool discover = true;              // ask local BEAM nodes for nodes() to find peers
  bool only_netns = false;           // serve only BEAMs in the daemon's network namespace
  uint32_t max_captures = 4;         // captures running at once (more: {error, {busy, _}})
  uint32_t max_connections = 64;     // distribution connections served at once
  uint32_t max_duration_ms = 600000; // longest capture accepted
  uint32_t grace_ms = 10000;         // how long after the duration a peer may take to answer
                                     // (it also loads, attaches and reads its capture)
};

inline constexpr const char* kDefaultConfigFile = "/etc/orion/orion.toml";

// Reads the TOML subset the daemon uses: `key = value` lines with strings, integers,
// booleans and arrays of strings; `#` comments. Unknown keys are errors, and so is a `cookie`
// key (a cookie belongs in the 0600 cookie file only). `missing_ok`: a missing file at the
// default path is not an error.
Status LoadConfigFile(const std::string& path, bool missing_ok, DaemonConfig* config);

// Parses TOML text (for tests); `origin` names the source in errors.
Status ParseConfigText(const std::string& text, const std::string& origin, DaemonConfig* config);

}  // namespace orion::daemon
