// `orion capture --daemon NODE`: the same capture, run by a daemon (and with --cluster by
// every daemon of the cluster), merged, and printed like a local capture plus "nodes".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace orion::cli {

struct RemoteCaptureOptions {
  std::string daemon;                 // "orion@host"
  bool cluster = false;               // every host, not only the daemon's
  std::string node;                   // only this BEAM node; "" = every BEAM
  std::string cookie_file;            // the cluster's cookie
  double duration_s = 10;
  bool json = false;
  uint32_t max_functions = 128;
  bool per_node = false;              // also each node's own results
  uint64_t max_rate = 2'000'000;      // each host's overload guard (probe hits/s; 0: none)
  std::vector<std::string> patterns;  // as the user wrote them (checked before sending)
  std::string mode = "auto";          // auto, probes or tracer (each daemon, each BEAM)
  std::string match_spec;             // tracer mode's; "" = every call
};

// Grace after the duration for the daemons to answer (and for their peers, whose own grace
// the daemon adds inside it).
inline constexpr double kRemoteGraceSeconds = 20;

int RunRemoteCapture(const RemoteCaptureOptions& options);

}  // namespace orion::cli
