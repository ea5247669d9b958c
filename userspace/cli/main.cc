// orion: one binary, several commands. Each command owns its flags and its --help.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "userspace/cli/capture_command.h"
#include "userspace/cli/daemon_command.h"
#include "userspace/cli/probes_command.h"
#include "userspace/cli/sketch_command.h"
#include "userspace/cli/top_command.h"
#include "userspace/cli/ui_command.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] is the command name
};

constexpr Command kCommands[] = {
    {"capture", "latency of named functions on a running BEAM, measured in the kernel",
     orion::RunCaptureCommand},
    {"daemon", "the per-host agent: a hidden Erlang node that captures for the cluster",
     orion::RunDaemonCommand},
    {"probes", "list a BEAM's USDT probes and count how often they fire", orion::RunProbesCommand},
    {"sketch", "summarize, merge and show DDSketches (stdin numbers or protobuf files)",
     orion::RunSketchCommand},
    {"top", "processes, mailboxes, GC, ports and schedulers of a running BEAM, from the kernel",
     orion::RunTopCommand},
    {"ui", "the live console: latency over time across the cluster, in a browser",
     orion::RunUiCommand},
};

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "orion: latency profiler for the BEAM, driven by eBPF\n\n"
               "Usage: orion COMMAND [OPTIONS]...\n\nCommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\nRun 'orion COMMAND --help' for the options of a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(stderr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    PrintUsage(stdout);
    return 0;
  }
  if (name == "--version" || name == "version") {
    std::printf("orion %s\n", ORION_VERSION);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (name == c.name) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "orion: unknown command '%s'\n\n", argv[1]);
  PrintUsage(stderr);
  return 2;
}
