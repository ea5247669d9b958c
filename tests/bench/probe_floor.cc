// Holds a BEAM in one of the states below until SIGINT/SIGTERM, for the overhead breakdown of
// scripts/bench.sh (tests/bench/beam/beam_bench.py):
//
//   probe_floor --pid PID semaphore   the semaphores of the probes `orion capture` attaches to are
//                                     raised by hand (process_vm_writev), nothing attached: the
//                                     BEAM formats every probe's strings, nothing traps
//   probe_floor --pid PID empty       an empty BPF program (empty_probe.bpf.c) attached to those
//                                     probes: formatting + the uprobe trap + a program that
//                                     returns at once, the floor of any BPF tracer
//   probe_floor --pid PID pair-semaphore PATTERN...
//                                     the BEAM pairs the calls of PATTERNs itself (patch 0007)
//                                     with orion__call's semaphore raised by hand and nothing
//                                     attached: what pairing costs the emulator, no trap
//   probe_floor --pid PID pair-empty PATTERN...
//                                     the BEAM pairs the calls of PATTERNs itself (patch 0007,
//                                     a record of its pairing table, as `orion capture` takes)
//                                     and the empty program is attached to orion__call (and
//                                     orion__calls, patch 0010): the floor of pairing in the
//                                     BEAM, one trap per 64 targeted calls with batches
//
// Prints "ready" on stdout once the state is in place, and undoes it on exit.
//
//   probe_floor --pid PID --exe BEAM_BINARY MODE ...
//                                     the same for a node that runs under valgrind
//                                     (tests/bench/beam/untargeted_instructions.sh): its
//                                     /proc/PID/exe is valgrind's tool, so the emulator binary
//                                     (mapped in the process) is named here
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "empty_probe.skel.h"
#include "userspace/beam/beam_process.h"
#include "userspace/beam/pair_table.h"
#include "userspace/beam/remote_memory.h"
#include "userspace/beam/usdt_notes.h"
#include "userspace/probes/bpf_environment.h"
#include "userspace/probes/capture.h"
#include "userspace/probes/mfa_pattern.h"
#include "userspace/probes/usdt_links.h"

namespace {

// The probes Orion's capture attaches to (userspace/probes/capture.cc).
const char* const kCaptureProbes[] = {
    "global__function__entry", "local__function__entry", "function__return",    "exception__catch",
    "process__exit",           "process__scheduled",     "process__unscheduled"};

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

// Adds `delta` to the USDT semaphore at `address` in `pid` (read, add, write back).
bool AddToSemaphore(pid_t pid, uint64_t address, int delta) {
  uint16_t value = 0;
  if (!orion::beam::ReadRemote(pid, address, &value, sizeof(value)).ok()) return false;
  value = static_cast<uint16_t>(value + delta);
  return orion::beam::WriteRemote(pid, address, &value, sizeof(value)).ok();
}

void WaitForSignal() {
  std::printf("ready\n");
  std::fflush(stdout);
  while (!g_stop) pause();
}

int HoldSemaphores(const orion::beam::BeamProcess& beam,
                   const std::vector<std::string>& probes) {
  auto notes = orion::beam::ReadUsdtNotes(beam.attach_path);
  if (!notes.ok()) {
    std::fprintf(stderr, "probe_floor: %s\n", notes.status().ToString().c_str());
    return 1;
  }
  std::set<uint64_t> semaphores;
  for (const auto& note : *notes) {
    for (const std::string& probe : probes) {
      if (note.provider == "erlang" && note.name == probe && note.semaphore) {
        semaphores.insert(note.semaphore);
      }
    }
  }
  std::vector<uint64_t> raised;
  for (uint64_t vaddr : semaphores) {
    auto address = orion::beam::RemoteAddress(beam.pid, beam.attach_path, vaddr);
    if (!address.ok() || !AddToSemaphore(beam.pid, *address, 1)) {
      std::fprintf(stderr, "probe_floor: cannot raise the semaphore at 0x%" PRIx64 "\n", vaddr);
      for (uint64_t a : raised) AddToSemaphore(beam.pid, a, -1);
      return 1;
    }
    raised.push_back(*address);
  }
  WaitForSignal();
  for (uint64_t a : raised) AddToSemaphore(beam.pid, a, -1);
  return 0;
}

int AttachEmptyProgram(const orion::beam::BeamProcess& beam) {
  empty_probe_bpf* skel = empty_probe_bpf__open_and_load();
  if (!skel) {
    std::fprintf(stderr, "probe_floor: loading empty_probe.bpf.c failed: %s\n",
                 std::strerror(errno));
    return 1;
  }
  int rc = 0;
  {
    orion::probes::UsdtLinks links;
    for (const char* probe : kCaptureProbes) {
      if (std::string(probe) == "exception__catch" && !beam.exception_probe) continue;
      auto s = links.Attach(skel->progs.empty_probe, beam.pid, beam.attach_path, probe, 0);
      if (!s.ok()) {
        std::fprintf(stderr, "probe_floor: %s\n", s.ToString().c_str());
        rc = 1;
        break;
      }
    }
    if (rc == 0) WaitForSignal();
  }
  empty_probe_bpf__destroy(skel);
  return rc;
}

int Fail(const orion::Status& s) {
  std::fprintf(stderr, "probe_floor: %s\n", s.ToString().c_str());
  return 1;
}

// What `orion capture` sets up for pairing in the BEAM (userspace/probes/capture.cc), with the
// empty program in place of orion_pair_call (`attach`), or no program and orion__call's
// semaphore raised by hand.
// `activate_timeout`: how long the emulator may take to install the breakpoints (longer under
// valgrind).
int HoldPairing(const orion::beam::BeamProcess& beam,
                const std::vector<std::string>& pattern_texts, bool attach,
                std::chrono::milliseconds activate_timeout) {
  std::vector<orion::probes::MfaPattern> parsed;
  for (const auto& text : pattern_texts) {
    auto p = orion::probes::ParseMfaPattern(text);
    if (!p.ok()) return Fail(p.status());
    parsed.push_back(std::move(*p));
  }
  // As a capture pairing in the BEAM does: breakpoints (patch 0008), no enable-table claim.
  const auto patterns = orion::probes::PairPatterns(parsed);
  auto table = orion::beam::PairTable::Locate(beam);
  if (!table.ok()) return Fail(table.status());
  auto claim = table->Reserve(patterns, 128);
  if (!claim.ok()) return Fail(claim.status());
  if (!attach) {
    if (auto s = claim->Activate(activate_timeout); !s.ok()) return Fail(s);
    // With batches (patch 0010) the emulator fires orion__calls once per 64 calls.
    if (beam.batch_probe) return HoldSemaphores(beam, {"orion__call", "orion__calls"});
    return HoldSemaphores(beam, {"orion__call"});
  }
  empty_probe_bpf* skel = empty_probe_bpf__open_and_load();
  if (!skel) return Fail(orion::Internal("loading empty_probe.bpf.c failed"));
  int rc = 0;
  {
    orion::probes::UsdtLinks links;
    std::vector<const char*> probes = {"orion__function", "orion__call"};
    if (beam.batch_probe) probes.push_back("orion__calls");  // as a capture attaches
    for (const char* probe : probes) {
      if (auto s = links.Attach(skel->progs.empty_probe, beam.pid, beam.attach_path, probe, 0);
          !s.ok()) {
        rc = Fail(s);
        break;
      }
    }
    if (rc == 0) {
      if (auto s = claim->Activate(activate_timeout); !s.ok()) {
        rc = Fail(s);
      } else {
        WaitForSignal();
      }
    }
  }
  empty_probe_bpf__destroy(skel);
  return rc;
}

// A BEAM that /proc/PID/exe does not name (valgrind runs it): what InspectBeam would find,
// from the emulator binary `exe` that the process maps.
orion::StatusOr<orion::beam::BeamProcess> InspectBinary(pid_t pid, const std::string& exe) {
  auto notes = orion::beam::ReadUsdtNotes(exe);
  if (!notes.ok()) return notes.status();
  orion::beam::BeamProcess beam;
  beam.pid = pid;
  beam.exe = exe;
  beam.attach_path = exe;
  for (const auto& n : *notes) beam.usdt_sites += n.provider == "erlang";
  beam.function_probes = orion::beam::CountSites(*notes, "erlang", "function__return") > 0;
  beam.exception_probe = orion::beam::CountSites(*notes, "erlang", "exception__catch") > 0;
  beam.pair_probe = orion::beam::CountSites(*notes, "erlang", "orion__call") > 0;
  beam.batch_probe = orion::beam::CountSites(*notes, "erlang", "orion__calls") > 0;
  beam.flavor = beam.function_probes ? orion::beam::Flavor::kEmu : orion::beam::Flavor::kJit;
  if (!beam.pair_probe) {
    return orion::FailedPrecondition(exe, " has no orion__call probe (Orion's patch 0007)");
  }
  return beam;
}

constexpr char kUsage[] =
    "usage: probe_floor --pid PID [--exe BEAM_BINARY] "
    "semaphore|empty|pair-semaphore PATTERN...|pair-empty PATTERN...\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || std::strcmp(argv[1], "--pid") != 0) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  orion::probes::InstallLibbpfLogger(false);
  const pid_t pid = static_cast<pid_t>(std::atoi(argv[2]));
  const bool named_exe = std::strcmp(argv[3], "--exe") == 0;
  if (named_exe && argc < 6) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  auto beam = named_exe ? InspectBinary(pid, argv[4]) : orion::beam::InspectBeam(pid);
  if (!beam.ok()) {
    std::fprintf(stderr, "probe_floor: %s\n", beam.status().ToString().c_str());
    return 1;
  }
  if (named_exe) {
    argv += 2;  // MODE and its patterns follow --exe BEAM_BINARY
    argc -= 2;
  }
  const std::string mode = argv[3];
  if (mode == "semaphore") {
    return HoldSemaphores(*beam, std::vector<std::string>(std::begin(kCaptureProbes),
                                                          std::end(kCaptureProbes)));
  }
  if (mode == "empty") return AttachEmptyProgram(*beam);
  if ((mode == "pair-empty" || mode == "pair-semaphore") && argc > 4) {
    // Under valgrind (--exe) the emulator runs some 50 times slower.
    return HoldPairing(*beam, std::vector<std::string>(argv + 4, argv + argc),
                       mode == "pair-empty",
                       named_exe ? std::chrono::seconds(300) : std::chrono::seconds(5));
  }
  std::fputs(kUsage, stderr);
  return 2;
}
