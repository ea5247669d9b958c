// What a capture measures, as plain values: the per-function results and the loss counters.
//
// Kept apart from capture.h (which drags in libbpf and the BPF skeleton) so that code which only
// carries results, such as the daemon's protocol (userspace/protocol/protocol.h), needs neither.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "sketch/ddsketch.h"

namespace orion::probes {

// Everything measured for one concrete function, cumulative since Start.
struct FunctionStats {
  std::string mfa;  // as the BEAM prints it: "lists:sort/1"
  sketch::CountSketch wall{sketch::IndexMapping::Kernel()};  // ns, exact summary
  sketch::CountSketch cpu{sketch::IndexMapping::Kernel()};   // on-CPU ns, exact summary
  uint64_t exceptions = 0;  // calls that ended by an exception (no latency sample)
  uint64_t tail_calls = 0;  // tail-recursive re-entries folded into the call in flight
  uint64_t exits = 0;       // calls in flight when their process exited or hibernated
};

// Folds `from` (the same function, measured elsewhere: another BEAM, another node) into `into`.
inline Status MergeFunctionStats(FunctionStats& into, const FunctionStats& from) {
  RETURN_IF_ERROR(into.wall.merge(from.wall).WithContext(into.mfa));
  RETURN_IF_ERROR(into.cpu.merge(from.cpu).WithContext(into.mfa));
  into.exceptions += from.exceptions;
  into.tail_calls += from.tail_calls;
  into.exits += from.exits;
  return OkStatus();
}

// What could not be measured; all zero in a healthy capture.
struct LostCounters {
  uint64_t frames_evicted = 0;        // processes evicted from the in-flight map (LRU, full)
  uint64_t depth_overflow = 0;        // entries beyond the per-process frame stack
  uint64_t functions_over_limit = 0;  // entries of functions past max_functions
  uint64_t mfa_truncated = 0;         // MFA strings longer than the probes read
  uint64_t read_errors = 0;           // probe arguments that could not be read
  uint64_t recursion_misses = 0;      // probe hits the kernel skipped (another BPF program ran)
  uint64_t hash_collisions = 0;       // functions matched by hash but not by name (dropped)
};

}  // namespace orion::probes
