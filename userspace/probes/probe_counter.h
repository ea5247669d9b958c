// Counts how often a BEAM's USDT probes fire (bpf/probe_count.bpf.c): per probe, and, for
// the function-entry probes, how many hits carried one given MFA.
//
//   ASSIGN_OR_RETURN(auto counter, ProbeCounter::Start(beam, {"process__scheduled"}, ""));
//   sleep(5);
//   ASSIGN_OR_RETURN(auto counts, counter->Read());
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/beam/beam_process.h"
#include "userspace/probes/usdt_links.h"

struct probe_count_bpf;

namespace orion::probes {

class ProbeCounter {
 public:
  struct Count {
    std::string probe;
    uint64_t hits = 0;
    uint64_t target_hits = 0;  // hits whose MFA argument equals the target MFA
  };

  // Attaches to `probes` (ELF note names, e.g. "local__function__entry") of `beam`.
  // `target_mfa` ("m:f/a", may be empty) is compared with arg1 of the function-entry and
  // return probes.
  static StatusOr<std::unique_ptr<ProbeCounter>> Start(const beam::BeamProcess& beam,
                                                       const std::vector<std::string>& probes,
                                                       const std::string& target_mfa);
  ~ProbeCounter();

  // Totals since Start, summed over CPUs, in the order of `probes`.
  StatusOr<std::vector<Count>> Read() const;

  // The erlang:* probes worth counting by default: function, process, message and GC.
  static std::vector<std::string> DefaultProbes();

 private:
  ProbeCounter() = default;
  probe_count_bpf* skel_ = nullptr;
  UsdtLinks links_;
  std::vector<std::string> probes_;
};

}  // namespace orion::probes
