// `orion capture --mode tracer --node NODE [--match SPEC] PATTERN...`: tracer mode
// (docs/tracer.md), for nodes whose function probes cannot fire (JIT, stock OTP).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/beam/beam_process.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion::cli {

struct TracerCaptureRequest {
  std::string node;         // app@host, on this host
  std::string cookie_file;  // the node's cookie
  std::string cookie;       // or the cookie itself (then cookie_file is not read)
  uint64_t max_rate = 0;    // probe hits per second over which the capture stops; 0: none
  std::vector<probes::MfaPattern> patterns;
  std::string match_spec;          // "" = every call
  std::optional<double> duration;  // seconds; none = until Ctrl-C (at most an hour)
  double interval = 1;
  bool json = false;
  bool verbose = false;
};

int RunTracerCapture(const TracerCaptureRequest& request);

// The distribution cookie a running BEAM uses: its -setcookie argument, else the
// .erlang.cookie in its $HOME (read through /proc/PID/root, owned by the BEAM's user and
// private to it, as erl itself requires).
StatusOr<std::string> NodeCookie(const beam::BeamProcess& beam);

}  // namespace orion::cli
