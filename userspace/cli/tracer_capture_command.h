// `orion capture --mode tracer --node NODE [--match SPEC] PATTERN...`: tracer mode
// (docs/tracer.md), for nodes whose function probes cannot fire (JIT, stock OTP).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "userspace/probes/mfa_pattern.h"

namespace orion::cli {

struct TracerCaptureRequest {
  std::string node;         // app@host, on this host
  std::string cookie_file;  // the node's cookie
  std::vector<probes::MfaPattern> patterns;
  std::string match_spec;          // "" = every call
  std::optional<double> duration;  // seconds; none = until Ctrl-C (at most an hour)
  double interval = 1;
  bool json = false;
  bool verbose = false;
};

int RunTracerCapture(const TracerCaptureRequest& request);

}  // namespace orion::cli
