// Finds out what a pid is before anything is attached to it: whether it is a BEAM, whether
// its emulator carries the `erlang` USDT provider, which flavor it runs, and its node name.
// Every "no" comes back as a Status whose message says what to do instead.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/status.h"

namespace orion::beam {

enum class Flavor { kEmu, kJit };
std::string_view FlavorName(Flavor f);

// Where a BEAM's node name came from (userspace/beam/node_names.h): epmd, which knows names
// given at run time too, or only the command line's -sname/-name (epmd does not know the
// node: still starting, or not registered).
enum class NameSource { kNone, kCmdline, kEpmd };
std::string_view NameSourceName(NameSource s);  // "none", "cmdline", "epmd"

struct BeamProcess {
  pid_t pid = 0;
  std::string exe;          // the emulator binary, e.g. .../erts-13.1.5/bin/beam.emu
  std::string attach_path;  // the path to give libbpf (reachable from our mount namespace)
  Flavor flavor = Flavor::kJit;  // from the probes, else the binary's name and the JIT's memory
  int usdt_sites = 0;            // number of erlang:* probe sites in the binary
  bool function_probes = false;  // function__return sites exist: the emu flavor
  bool exception_probe = false;  // Orion's patch 0002 (exception__catch) is in
  bool pair_probe = false;       // Orion's patch 0007 (orion__call: calls paired in the BEAM)
  bool batch_probe = false;      // Orion's patch 0010 (orion__calls: ended calls in batches)
  bool mailbox_probe = false;    // Orion's patch 0011 (orion__mailbox: senders report queue lengths)
  std::string node_name;         // "app@host", "" if not distributed
  NameSource node_source = NameSource::kNone;
  std::vector<std::string> argv;
};

// Inspects /proc/<pid> and finds its node name (ResolveNodeNames): NotFound if there is no such
// process, FailedPrecondition if it is not a BEAM or its emulator has no erlang USDT probes.
StatusOr<BeamProcess> InspectBeam(pid_t pid);

// The same for any BEAM, with or without USDT probes (usdt_sites == 0 then): what tracer mode
// needs to know about a stock node. FailedPrecondition only if it is not a BEAM.
StatusOr<BeamProcess> InspectAnyBeam(pid_t pid);

// Why function probes cannot fire in `beam` ("runs the JIT flavor", "has no USDT probes"),
// or "" if they can.
std::string WhyNoFunctionProbes(const BeamProcess& beam);

// OK if function entry/return probes can fire in this BEAM (emu flavor with USDT), else a
// FailedPrecondition that says how to start a node where they can.
Status CheckFunctionProbes(const BeamProcess& beam);

// The command that captures `beam` in tracer mode instead ("orion capture --mode tracer
// --node app@host --cookie-file PATH (docs/tracer.md)"), for messages that name it.
std::string TracerModeCommand(const BeamProcess& beam);

// All running BEAMs with the erlang USDT provider (for the daemon and `orion top` without
// --pid), with their node names. Processes that vanish while being read are skipped.
// `only_own_netns`: only those in the caller's network namespace.
std::vector<BeamProcess> FindUsdtBeams(bool only_own_netns = false);
// Every running BEAM, with or without USDT probes (InspectAnyBeam): tracer mode's candidates.
std::vector<BeamProcess> FindAllBeams(bool only_own_netns = false);

// The node name a BEAM started with `args` has: "-sname a" -> "a@<short_host>",
// "-name a@h.example" -> "a@h.example"; "" if neither flag is given. A hint: a node may be
// named at run time, or renamed (ResolveNodeNames asks epmd).
std::string NodeNameFromArgs(const std::vector<std::string>& args, const std::string& short_host);

}  // namespace orion::beam
