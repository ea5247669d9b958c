// Tracer mode (docs/tracer.md): latency of Erlang functions on a BEAM whose own function probes
// cannot fire (the JIT flavor, Debian's stock erlang), with ERTS's match specs choosing the
// calls and Orion's erl_tracer NIF timing them in the node's memory.
//
//   TracerCaptureOptions options{.node = "app@host", .cookie = cookie,
//                                .patterns = {*ParseMfaPattern("m:f/2")},
//                                .match_spec = "[{['_', nadia], [], []}]"};
//   ASSIGN_OR_RETURN(auto capture, TracerCapture::Start(options));
//   ... ASSIGN_OR_RETURN(CaptureSnapshot snap, capture->Read());
//   RETURN_IF_ERROR(capture->Stop());  // the node is as it was
//
// Start connects to the node as a hidden node, loads orion_tracer (module and NIF), has it
// validate the targets and the match spec (nothing is changed on the node if either is wrong),
// finds the NIF's counts in the node's OS process (tracer/orion_tracer_area.h), and then has
// the node's orion_tracer watchdog set the meta trace patterns. Read copies the counts out
// with process_vm_readv. Stop clears the patterns, takes the final counts and purges
// the module (which frees the NIF's memory). If orion dies instead, the watchdog sees the
// connection drop, clears them and purges the module: nothing of Orion stays in the node.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/erlang/node_client.h"
#include "userspace/erlang/term.h"
#include "userspace/probes/capture.h"  // CaptureSnapshot, FunctionStats
#include "userspace/probes/mfa_pattern.h"

namespace orion::probes {

struct TracerCaptureOptions {
  std::string node;    // "app@host": a node of this host
  std::string cookie;  // its distribution cookie
  std::vector<MfaPattern> patterns;
  std::string match_spec;  // Erlang term syntax; "" = every call of the targets
  // Where orion_tracer.beam and orion_tracer_nif.so are: "" = $ORION_TRACER_DIR if set, else
  // the copies embedded in the orion binary.
  std::string tracer_dir;
  // The watchdog clears everything after this long even if orion is still connected.
  std::chrono::milliseconds time_limit = std::chrono::hours(1);
  std::chrono::milliseconds rpc_timeout = std::chrono::seconds(10);
};

// What a tracer capture measured: the same per-function results as probes mode (wall time
// only: the stock BEAM has no scheduling probes for on-CPU time), plus the tracer's counters.
struct TracerSnapshot {
  CaptureSnapshot capture;  // functions: every target, in id order sorted by MFA
  uint64_t calls = 0;       // call events (calls whose match spec matched)
  uint64_t returns = 0;
  uint64_t exceptions = 0;
  uint64_t unpaired = 0;  // returns with no matching call (calls made before the capture)
  uint64_t threads_over_limit = 0;  // events of scheduler threads past the NIF's table: dropped
};

struct TracerStart;

class TracerCapture {
 public:
  // Every pattern must name functions the node has (InvalidArgument otherwise, as for a bad
  // match spec): `orion capture --node`.
  static StatusOr<std::unique_ptr<TracerCapture>> Start(const TracerCaptureOptions& options);
  // For a capture across a host's BEAMs (the daemon's): a pattern whose module the node cannot
  // load, or that names no function of it, is left out and said in `missing`, and when none
  // is left there is no capture (and nothing of Orion stays in the node). The operator's own
  // shell is a BEAM of the host too.
  static StatusOr<TracerStart> StartSkippingMissing(const TracerCaptureOptions& options);
  ~TracerCapture();  // Stop(), errors logged
  TracerCapture(const TracerCapture&) = delete;
  TracerCapture& operator=(const TracerCapture&) = delete;

  // Cumulative totals since Start; after Stop, the final ones.
  StatusOr<TracerSnapshot> Read() const;
  // Events the NIF counted since Start (calls, returns, exceptions): cheap (its per-thread
  // counters, no histogram), for the overload guard.
  StatusOr<uint64_t> Hits() const;

  // True while the node's watchdog still runs the capture (one bounded rpc; it also keeps the
  // distribution connection ticking). False once its time limit cleared it.
  StatusOr<bool> Alive();

  // Clears the trace patterns on the node, keeps the final counts, purges
  // orion_tracer.
  Status Stop();

  pid_t beam_pid() const { return beam_pid_; }
  const std::string& own_node() const;

 private:
  TracerCapture() = default;
  static StatusOr<TracerStart> Launch(const TracerCaptureOptions& options, bool skip_missing);
  StatusOr<erlang::Term> Call(std::string_view module, std::string_view function,
                              std::vector<erlang::Term> args);
  Status LoadModule(const std::string& beam, const std::string& nif_path);  // beam: the bytes
  Status LocateArea();
  // The NIF's counts as they are now (process_vm_readv of the node's memory).
  StatusOr<TracerSnapshot> ReadArea() const;
  Status StartTracing(bool skip_missing);
  Status Unload();

  TracerCaptureOptions options_;
  std::unique_ptr<erlang::NodeClient> node_;
  pid_t beam_pid_ = -1;
  uint64_t area_ = 0;                        // the NIF's orion_tracer_area in the node
  mutable std::optional<TracerSnapshot> last_;  // the last counts read, while tracing
  std::optional<TracerSnapshot> final_;         // the counts once Stop cleared the tracing
  std::map<uint32_t, std::string> targets_;  // id -> "m:f/a" as the BEAM prints it
  std::optional<erlang::Term> watchdog_;     // the watchdog's pid, while tracing
  erlang::Term target_terms_;                // [{Id, Text, {M, F, A}}], for stop/2
  bool module_loaded_ = false;
  std::vector<std::string> missing_;  // the patterns left out (skip_missing), and why
  bool none_present_ = false;         // skip_missing, and every pattern was left out
};

struct TracerStart {
  std::unique_ptr<TracerCapture> capture;  // null: none of the patterns is on the node
  // Why each pattern left out was: "cannot load module 'Elixir.Bar.Repo': nofile".
  std::vector<std::string> missing;
};

// The directory orion takes orion_tracer.beam and orion_tracer_nif.so from, "" for the copies
// embedded in the binary (see TracerCaptureOptions::tracer_dir).
std::string DefaultTracerDir();

}  // namespace orion::probes
