#include "tests/integration/support/bpf_requirements.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "tests/integration/support/beam_node.h"
#include "userspace/probes/bpf_environment.h"

namespace orion::testing {

bool BpfRequired() {
  const char* v = std::getenv("ORION_REQUIRE_BPF");
  return v && std::strcmp(v, "1") == 0;
}

std::string BpfUnavailableReason() {
  if (Status env = probes::CheckBpfEnvironment(); !env.ok()) return env.message();
  const std::string erl = BeamNode::OtpPrefix() + "/bin/erl";
  if (access(erl.c_str(), X_OK) != 0) {
    return "no USDT-enabled erl at " + erl + " (run beam_dtrace_build/build.sh or scripts/setup.sh)";
  }
  return "";
}

}  // namespace orion::testing
