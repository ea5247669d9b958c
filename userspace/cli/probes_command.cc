// orion probes --pid PID [--duration S] [--mfa M:F/A] [--list]
//
// The first thing to run on a new node: is it a USDT BEAM, which flavor, do the probes
// fire. It counts hits in the kernel (bpf/probe_count.bpf.c) and prints one line per probe,
// then the state of the BEAM's enable table (patch 0003), dropping the records of captures
// whose orion died, and of its pairing table (patches 0007-0012), the same way for both
// flavors.
#include "userspace/cli/probes_command.h"

#include <getopt.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#include "userspace/beam/beam_process.h"
#include "userspace/beam/enable_table.h"
#include "userspace/beam/pair_table.h"
#include "userspace/beam/usdt_notes.h"
#include "userspace/cli/cli_support.h"
#include "userspace/cli/signals.h"
#include "userspace/probes/bpf_environment.h"
#include "userspace/probes/probe_counter.h"

namespace orion {
namespace {

constexpr char kUsage[] =
    "Usage: orion probes --pid PID [--duration SECONDS] [--mfa M:F/A] [--list] [-v]\n"
    "\n"
    "Shows a BEAM's erlang USDT probes: whether it has them, which flavor it runs (function\n"
    "probes fire only in the emu flavor), how often each probe fires, which modules'\n"
    "function probes running captures let fire (the enable table of Orion's patch 0003), and\n"
    "which captures its emulator pairs calls for (the pairing table: the emu flavor, and the\n"
    "JIT of Orion's patched build).\n"
    "\n"
    "Options:\n"
    "  -p, --pid PID          the BEAM's OS pid (beam.smp / beam.emu)\n"
    "  -d, --duration S       count for S seconds (default 5)\n"
    "  -m, --mfa M:F/A        also count function-entry hits of this exact MFA\n"
    "  -l, --list             list the probe sites in the binary and the node's name (with\n"
    "                         where it came from: epmd or the command line), count nothing;\n"
    "                         for a BEAM without probes (Debian's erl), its name only\n"
    "  -v, --verbose          debug logs, including libbpf's\n"
    "  -h, --help             this help\n"
    "\n"
    "Examples:\n"
    "  orion probes --pid $(pgrep -f beam.emu)\n"
    "  orion probes --pid 4242 --duration 2 --mfa 'lists:sort/1'\n"
    "  orion probes --pid 4242 --list\n";

// "enable table: off" / "filtering for 2 capture(s) (orion pids 10, 12), 3 slot(s)": what a
// patched emulator lets through while captures run. Records of dead orion processes (kill -9)
// are dropped first, so that other tracers see every call again.
void PrintEnableTable(const beam::BeamProcess& beam) {
  auto table = beam::EnableTable::Locate(beam);
  if (!table.ok()) {
    std::printf("enable table: none (%s)\n",
                table.status().code() == StatusCode::kNotFound
                    ? "built without Orion's patch 0003: a capture makes every call fire"
                    : std::string(table.status().message()).c_str());
    return;
  }
  auto before = table->Read();
  if (Status s = table->Prune(); !s.ok()) spdlog::warn("enable table: {}", s.ToString());
  auto state = table->Read();
  if (!before.ok() || !state.ok()) {
    std::printf("enable table: unreadable (%s)\n",
                (before.ok() ? state.status() : before.status()).ToString().c_str());
    return;
  }
  const size_t dropped = before->owners.size() - state->owners.size();
  if (!state->filtering) {
    std::printf("enable table: off (every call fires the probes a tracer attaches to)%s\n",
                dropped ? ", records of dead orion processes dropped" : "");
    return;
  }
  std::string pids;
  for (const auto& o : state->owners) pids += (pids.empty() ? "" : ", ") + std::to_string(o.pid);
  std::printf("enable table: filtering for %zu capture(s) (orion pids %s), %s%s\n",
              state->owners.size(), pids.c_str(),
              state->all ? "every module"
                         : (std::to_string(state->slots_set) + " module slot(s)").c_str(),
              dropped ? "; records of dead orion processes dropped" : "");
}

// "pairing table: 1 of 4 records held (orion pid 10: 3 functions)": the captures the emulator
// pairs calls for (patch 0007; in the JIT, patch 0012). A killed orion's record is reported;
// the next capture takes it over.
void PrintPairTable(const beam::BeamProcess& beam) {
  const bool jit = beam.flavor == beam::Flavor::kJit;
  auto table = beam::PairTable::Locate(beam);
  if (!table.ok()) {
    std::printf("pairing table: none (%s)\n",
                table.status().code() != StatusCode::kNotFound
                    ? std::string(table.status().message()).c_str()
                : jit ? "this JIT emulator does not pair calls, an OTP without Orion's patch "
                        "0012: capture it in tracer mode, docs/tracer.md"
                      : "built without Orion's patch 0007: captures pair calls in BPF");
    return;
  }
  auto records = table->Records();
  if (!records.ok()) {
    std::printf("pairing table: unreadable (%s)\n", records.status().ToString().c_str());
    return;
  }
  std::string held;
  for (const auto& r : *records) {
    held += (held.empty() ? " (" : "; ") + std::string("orion pid ") + std::to_string(r.pid) +
            (r.alive ? ": breakpoints in " + std::to_string(r.breakpoints) + " function(s), " +
                           std::to_string(r.functions) + " called"
                     : ": dead orion, taken over by the next capture");
  }
  std::printf("pairing table: %zu of %u records held%s\n", records->size(),
              beam::PairMaxRecords(), held.empty() ? "" : (held + ")").c_str());
  if (jit) return;  // no function probes, so no return sites
  // Patch 0009: on while a capture holds the enable table (a prune above may just have asked
  // the emulator to turn them off).
  auto sites = table->ReturnSites();
  std::printf("deallocate_return's return probe: %s\n",
              !sites.ok() ? sites.status().ToString().c_str()
              : *sites    ? "on (a capture holds the enable table)"
                          : "off (as in stock OTP: no capture holds the enable table)");
}

// Any BEAM, with or without probes: its node name is worth knowing either way (a stock node is
// what tracer mode takes, by that name).
int ListProbes(const beam::BeamProcess& beam) {
  // "node rabbit@web1 (epmd)": the name and where it came from (docs/probes.md).
  const std::string node =
      beam.node_name.empty()
          ? std::string("-")
          : beam.node_name + " (" + std::string(beam::NameSourceName(beam.node_source)) + ")";
  std::printf("pid %d  %s  flavor %s  node %s\n", beam.pid, beam.exe.c_str(),
              std::string(beam::FlavorName(beam.flavor)).c_str(),
              node.c_str());
  if (beam.usdt_sites == 0) {
    std::printf("no erlang USDT probes (an OTP built without --with-dynamic-trace=systemtap)%s\n",
                beam.node_name.empty()
                    ? ""
                    : ": a capture takes this node in tracer mode, by its name (docs/tracer.md)");
    return cli::kExitOk;
  }
  auto notes = beam::ReadUsdtNotes(beam.attach_path);
  if (!notes.ok()) return cli::ReportError("probes", notes.status());
  std::map<std::string, int> sites;
  for (const auto& n : *notes) {
    if (n.provider == "erlang") ++sites[n.name];
  }
  std::printf("%-36s %s\n", "PROBE", "SITES");
  for (const auto& [name, count] : sites) std::printf("%-36s %d\n", name.c_str(), count);
  PrintEnableTable(beam);
  PrintPairTable(beam);
  return cli::kExitOk;
}

}  // namespace

int RunProbesCommand(int argc, char** argv) {
  static const option kOptions[] = {{"pid", required_argument, nullptr, 'p'},
                                    {"duration", required_argument, nullptr, 'd'},
                                    {"mfa", required_argument, nullptr, 'm'},
                                    {"list", no_argument, nullptr, 'l'},
                                    {"verbose", no_argument, nullptr, 'v'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  long pid = 0;
  double duration = 5;
  std::string mfa;
  bool list = false, verbose = false;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "p:d:m:lvh", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'p': {
        char* end = nullptr;
        pid = std::strtol(optarg, &end, 10);
        if (*end != '\0' || pid <= 0) {
          std::fprintf(stderr, "orion probes: --pid needs a process id, got '%s'\n", optarg);
          return cli::kExitUsage;
        }
        break;
      }
      case 'd':
        if (!cli::ParseSeconds(optarg, &duration)) {
          std::fprintf(stderr, "orion probes: --duration needs a positive number of seconds\n");
          return cli::kExitUsage;
        }
        break;
      case 'm': mfa = optarg; break;
      case 'l': list = true; break;
      case 'v': verbose = true; break;
      case 'h': std::fputs(kUsage, stdout); return cli::kExitOk;
      default: std::fputs(kUsage, stderr); return cli::kExitUsage;
    }
  }
  if (pid == 0 || optind != argc) {
    std::fputs(kUsage, stderr);
    return cli::kExitUsage;
  }
  cli::ConfigureLogging(verbose);
  probes::InstallLibbpfLogger(verbose);

  if (list) {
    auto any = beam::InspectAnyBeam(static_cast<pid_t>(pid));
    if (!any.ok()) return cli::ReportError("probes", any.status());
    return ListProbes(*any);
  }
  auto beam = beam::InspectBeam(static_cast<pid_t>(pid));
  if (!beam.ok()) return cli::ReportError("probes", beam.status());

  if (Status env = probes::CheckBpfEnvironment(); !env.ok()) return cli::ReportError("probes", env);
  auto wanted = probes::ProbeCounter::DefaultProbes();
  std::erase_if(wanted, [&](const std::string& p) {
    return (p == "exception__catch" && !beam->exception_probe) ||
           (p == "orion__call" && !beam->pair_probe) ||
           (p == "orion__calls" && !beam->batch_probe) ||
           (p == "function__return" && !beam->function_probes);
  });
  auto counter = probes::ProbeCounter::Start(*beam, wanted, mfa);
  if (!counter.ok()) return cli::ReportError("probes", counter.status());

  cli::InstallStopSignals();
  spdlog::info("counting probes of pid {} ({} flavor) for {:g} s", pid,
               beam::FlavorName(beam->flavor), duration);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(duration);
  while (std::chrono::steady_clock::now() < deadline && !cli::StopRequested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto counts = (*counter)->Read();
  if (!counts.ok()) return cli::ReportError("probes", counts.status());
  std::printf("%-28s %12s%s\n", "PROBE", "HITS", mfa.empty() ? "" : ("  " + mfa).c_str());
  for (const auto& count : *counts) {
    std::printf("%-28s %12llu", count.probe.c_str(), static_cast<unsigned long long>(count.hits));
    if (!mfa.empty()) std::printf("  %llu", static_cast<unsigned long long>(count.target_hits));
    std::printf("\n");
  }
  PrintEnableTable(*beam);
  PrintPairTable(*beam);
  if (beam->flavor == beam::Flavor::kJit) {
    spdlog::warn("pid {} runs the JIT flavor: function entry/return probes do not fire there{}",
                 pid, beam::PairTable::Locate(*beam).ok()
                          ? "; its emulator pairs a capture's calls itself (orion__call, "
                            "orion__calls)"
                          : "; capture it in tracer mode (docs/tracer.md)");
  }
  return cli::kExitOk;
}

}  // namespace orion
