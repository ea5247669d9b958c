// A BEAM's node name, from what the host knows rather than from how the BEAM was started:
// epmd (in the BEAM's network namespace, on the port the BEAM would use) gives every registered
// alive name and its distribution port, /proc leads from the port's listening socket to the
// pid that holds it, and the command line (-sname/-name) is the hint that gives the host part
// and names BEAMs epmd does not know (yet). docs/operations.md, "Which BEAMs a daemon sees".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/beam/beam_process.h"

namespace orion::beam {

struct NodeNameChoice {
  std::string name;  // "" if the BEAM is not distributed
  NameSource source = NameSource::kNone;
  bool operator==(const NodeNameChoice&) const = default;
};

// The name of a BEAM whose command line gives `cmdline_name` ("" if none) and that holds the
// listening socket epmd registered as `epmd_alive` (nullopt if none). epmd wins: a node can be
// renamed at run time. Its host part is the command line's when the alive parts agree, else
// `short_host` (a node named at run time with long names is listed under its short host name:
// epmd keeps no host part).
NodeNameChoice ChooseNodeName(const std::string& cmdline_name,
                              const std::optional<std::string>& epmd_alive,
                              const std::string& short_host);

// The epmd port a BEAM registers with: -epmd_port on its command line (erl puts
// $ERL_EPMD_PORT there), else 4369.
uint16_t EpmdPortFromArgs(const std::vector<std::string>& args);

// Sets node_name and node_source of each BEAM: one NAMES request to each epmd the BEAMs use
// (per network namespace and epmd port), one read of that namespace's /proc/net/tcp and tcp6,
// and a scan of each BEAM's fds until its listening socket is found. Without epmd, or
// without the privilege to join another namespace, the command line's names remain.
void ResolveNodeNames(std::vector<BeamProcess>& beams);

// Whether a request's `requested` node name names the BEAM called `name`: the same name, or
// the same alive name with one host part the short form of the other (app@web1 and
// app@web1.example.com: epmd's names are unique per host, and a short name's host part may
// be a guess).
bool NodeNameMatches(std::string_view name, std::string_view requested);

}  // namespace orion::beam
