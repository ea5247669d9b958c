// A capture on the BEAMs of this host, for the daemon: find the targets, attach, wait,
// read, detach. The CLI's `orion capture --pid` does the same with a live view; this one is
// headless and bounded.
//
// Each BEAM is captured on its own, in probes mode (from the kernel: the emu flavor's function
// probes, or the emulator's own pairing, which the JIT of Orion's patched build has too; a BPF
// object of its own) or in tracer mode (docs/tracer.md: orion_tracer loaded over the
// distribution channel with the daemon's cookie), as the request's mode says, with an overload
// guard of its own; the results are merged by function. What becomes of each BEAM is reported
// (protocol::BeamStatus): one that lacks the module (the operator's own shell), or that cannot
// be captured, does not fail the others.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/beam/beam_process.h"
#include "userspace/probes/capture_types.h"
#include "userspace/protocol/protocol.h"

namespace orion::daemon {

// One BEAM's totals since the capture attached to it (cumulative: a consumer that wants
// per-interval values subtracts two reads, probes/capture_values.h).
struct BeamRead {
  beam::BeamProcess beam;
  bool tracer_mode = false;
  std::vector<probes::FunctionStats> functions;
  probes::LostCounters lost;
};

struct HostCaptureSpec {
  std::vector<std::string> patterns;  // as the user wrote them: "lists:sort/1", "MyApp.Repo"
  uint32_t duration_ms = 5000;
  std::string node;                   // only the BEAM with this node name; "" = every BEAM
  uint32_t max_functions = 128;
  bool only_netns = false;            // only BEAMs in this process's network namespace
  uint64_t max_rate = 2'000'000;      // events per second that stop a BEAM's capture; 0: none
  protocol::CaptureMode mode = protocol::CaptureMode::kAuto;
  std::string match_spec;             // tracer mode's; "" = every call
  std::string cookie;                 // for tracer mode's connection to each node
  int pid = 0;                        // only the BEAM with this OS pid; 0 = every BEAM
  // Interval reads (streams, watches): every interval_ms while the capture runs, and once more
  // after it detached (`final` true), on_interval gets each BEAM's cumulative totals. A failed
  // read of one BEAM leaves it out of that call. 0: no interval reads, only the result.
  uint32_t interval_ms = 0;
  std::function<void(const std::vector<BeamRead>& reads, bool final)> on_interval;
  // Called once, when every BEAM that could be attached is: the BEAMs being captured.
  std::function<void(const std::vector<beam::BeamProcess>& beams)> on_attached;
};

struct HostCaptureResult {
  // OK if some BEAM was captured or lacks the module; else why not (the last refusal or
  // failure), and `beam_statuses` say it for each BEAM.
  Status status;
  std::vector<probes::FunctionStats> functions;  // the counted BEAMs' calls, merged
  probes::LostCounters lost;
  std::vector<beam::BeamProcess> beams;  // what was captured
  std::vector<protocol::BeamStatus> beam_statuses;  // every BEAM of the request, one each
  std::vector<std::string> warnings;     // e.g. a BEAM that exited during the capture
  std::optional<uint64_t> stopped_at_rate;  // the overload guard stopped a BEAM early (its rate)
  std::vector<std::string> tracer_nodes;    // the nodes captured in tracer mode
};

// The BEAMs of this host that a request may target (`usdt_only`: those with USDT probes, emu
// and jit alike; `node` filters by node name (beam::NodeNameMatches), `only_netns` by network
// namespace).
std::vector<beam::BeamProcess> HostBeams(const std::string& node, bool only_netns,
                                         bool usdt_only = true);

// NotFound, for a request whose BEAMs HostBeams did not find. With a `node`, the message lists
// the names this host's BEAMs have and where each came from (epmd, cmdline).
Status NoBeamFound(const std::string& node, bool only_netns, bool usdt_only);

// Whether probes mode can capture spec's patterns on `beam`: function probes (the emu flavor of
// a USDT build), or a JIT whose emulator pairs them (Orion's patch 0012, within its table). A
// bad pattern cannot be captured anywhere. Reads the BEAM's memory for a JIT.
bool ProbesCanCapture(const beam::BeamProcess& beam, const HostCaptureSpec& spec);

// Runs the capture for spec.duration_ms, or until `stop` is set (then what was captured so far
// is returned). NotFound when no BEAM matches, InvalidArgument for a bad pattern or (from a
// node's orion_tracer) a bad match spec: the request's errors. Anything about one BEAM is in
// the result (its status; result.status when no BEAM could be captured at all).
StatusOr<HostCaptureResult> RunHostCapture(const HostCaptureSpec& spec,
                                           const std::atomic<bool>& stop);

}  // namespace orion::daemon
