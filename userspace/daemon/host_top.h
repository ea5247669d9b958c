// `{top, ...}` on the BEAMs of this host, for the daemon: `orion top`'s measurement, headless,
// reduced to each BEAM's top processes and ports (dist/protocol.h TopBeamEntry).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/protocol/protocol.h"

namespace orion::daemon {

struct HostTopSpec {
  uint32_t duration_ms = 5000;
  std::string node;  // "" = every USDT BEAM of the host
  protocol::TopSort sort = protocol::TopSort::kCpu;
  uint32_t limit = 20;
  bool only_netns = false;
  std::string host;    // this daemon's node name, written into each entry
  std::string cookie;  // for names: erlang:process_info/2 through the BEAM's node
};

// One entry per BEAM (jit or emu: the runtime probes fire in both). NotFound when no BEAM
// matches; a BEAM that cannot be measured is skipped with a warning in the log.
StatusOr<std::vector<protocol::TopBeamEntry>> RunHostTop(const HostTopSpec& spec,
                                                         const std::atomic<bool>& stop);

}  // namespace orion::daemon
