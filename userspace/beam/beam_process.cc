#include "userspace/beam/beam_process.h"

#include <dirent.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "userspace/beam/namespaces.h"
#include "userspace/beam/node_names.h"
#include "userspace/beam/usdt_notes.h"

namespace orion::beam {
namespace {

constexpr char kProvider[] = "erlang";

std::string ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return "";
  return std::string(buf, n);
}

std::vector<std::string> ReadCmdline(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    args.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

bool IsBeamBinaryName(std::string_view base) {
  // beam.smp, beam.emu, beam.jit, and the debug/asan variants (beam.debug.emu, ...).
  return base.rfind("beam.", 0) == 0;
}

// The flavor of a BEAM whose binary has no USDT probes to tell it (a stock OTP: Debian's, or
// any distribution's). A BEAM built with both flavors runs beam.emu or beam.jit by name when
// `-emu_flavor` picks one; a beam.smp is its build's default flavor, which is the JIT when
// the process has executable memory that no file backs: the JIT's code (a dual-mapped
// "memfd:vmem", or anonymous memory under +JMsingle true). The kernel's own executable
// mappings ([vdso], [uprobes], ...) are named in brackets and do not count.
Flavor FlavorWithoutProbes(pid_t pid, std::string_view binary_name) {
  if (binary_name.find(".emu") != std::string_view::npos) return Flavor::kEmu;
  if (binary_name.find(".jit") != std::string_view::npos) return Flavor::kJit;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // "start-end perms offset dev inode [path]"
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, path;
    if (!(fields >> range >> perms >> offset >> dev >> inode)) continue;
    std::getline(fields >> std::ws, path);
    if (perms.size() < 3 || perms[2] != 'x') continue;
    if (path.empty() || path.rfind("/memfd:", 0) == 0) return Flavor::kJit;
  }
  return Flavor::kEmu;
}

// What /proc/<pid> and the emulator binary tell, the command line's node name included.
StatusOr<BeamProcess> InspectOne(pid_t pid) {
  if (pid <= 0) return InvalidArgument("invalid pid ", pid);
  const std::string proc = "/proc/" + std::to_string(pid);
  if (access(proc.c_str(), F_OK) != 0) return NotFound("no process with pid ", pid);

  BeamProcess beam;
  beam.pid = pid;
  beam.exe = ReadLink(proc + "/exe");
  if (beam.exe.empty()) {
    const int err = errno;
    if (geteuid() != 0) {
      return PermissionDenied("cannot read ", proc, "/exe (", std::strerror(err),
                              "); run orion as root");
    }
    return PermissionDenied("cannot inspect pid ", pid, " (", proc, "/exe: ", std::strerror(err),
                            "); it may be a kernel thread or belong to another user namespace");
  }
  const std::string deleted = " (deleted)";
  if (beam.exe.size() > deleted.size() &&
      beam.exe.compare(beam.exe.size() - deleted.size(), deleted.size(), deleted) == 0) {
    beam.exe.resize(beam.exe.size() - deleted.size());
  }
  std::string base = beam.exe.substr(beam.exe.rfind('/') + 1);
  if (!IsBeamBinaryName(base)) {
    return FailedPrecondition("pid ", pid, " is ", beam.exe,
                           ", not a BEAM (an Erlang VM runs as beam.smp, beam.emu or beam.jit)");
  }
  beam.argv = ReadCmdline(pid);
  beam.node_name = NodeNameFromArgs(beam.argv, ShortHostname());
  if (!beam.node_name.empty()) beam.node_source = NameSource::kCmdline;
  // Through /proc/<pid>/root the binary is reachable even from another mount namespace.
  beam.attach_path = proc + "/root" + beam.exe;

  ASSIGN_OR_RETURN(auto notes, ReadUsdtNotes(beam.attach_path));
  for (const auto& n : notes) beam.usdt_sites += n.provider == kProvider;
  beam.function_probes = CountSites(notes, kProvider, "function__return") > 0;
  beam.exception_probe = CountSites(notes, kProvider, "exception__catch") > 0;
  beam.pair_probe = CountSites(notes, kProvider, "orion__call") > 0;
  beam.batch_probe = CountSites(notes, kProvider, "orion__calls") > 0;
  beam.mailbox_probe = CountSites(notes, kProvider, "orion__mailbox") > 0;
  beam.flavor = beam.usdt_sites > 0 ? (beam.function_probes ? Flavor::kEmu : Flavor::kJit)
                                    : FlavorWithoutProbes(pid, base);
  return beam;
}

StatusOr<BeamProcess> RequireUsdt(BeamProcess beam) {
  if (beam.usdt_sites == 0) {
    return FailedPrecondition(
        "the BEAM of pid ", beam.pid, " (", beam.exe,
        ") has no erlang USDT probes: it was built without --with-dynamic-trace=systemtap "
        "(Debian's and most distributions' erlang are). Start the node with the USDT-enabled "
        "OTP that beam_dtrace_build/build.sh builds: \"$(beam_dtrace_build/build.sh "
        "--print-prefix)/bin/erl -emu_flavor emu\"");
  }
  return beam;
}

}  // namespace

std::string_view FlavorName(Flavor f) { return f == Flavor::kEmu ? "emu" : "jit"; }

std::string_view NameSourceName(NameSource s) {
  switch (s) {
    case NameSource::kCmdline: return "cmdline";
    case NameSource::kEpmd: return "epmd";
    case NameSource::kNone: break;
  }
  return "none";
}

std::string NodeNameFromArgs(const std::vector<std::string>& args, const std::string& short_host) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "-sname" || args[i] == "-name") {
      const std::string& name = args[i + 1];
      if (name.find('@') != std::string::npos || args[i] == "-name") return name;
      return name + "@" + short_host;
    }
  }
  return "";
}

StatusOr<BeamProcess> InspectAnyBeam(pid_t pid) {
  ASSIGN_OR_RETURN(BeamProcess beam, InspectOne(pid));
  std::vector<BeamProcess> one{std::move(beam)};
  ResolveNodeNames(one);
  return std::move(one.front());
}

StatusOr<BeamProcess> InspectBeam(pid_t pid) {
  ASSIGN_OR_RETURN(BeamProcess found, InspectOne(pid));
  ASSIGN_OR_RETURN(BeamProcess beam, RequireUsdt(std::move(found)));
  std::vector<BeamProcess> one{std::move(beam)};
  ResolveNodeNames(one);
  return std::move(one.front());
}

std::string WhyNoFunctionProbes(const BeamProcess& beam) {
  if (beam.usdt_sites == 0) return "has no USDT probes (an OTP built without dynamic trace)";
  if (!beam.function_probes) return "runs the JIT flavor (no function probes since OTP 24)";
  return "";
}

std::string TracerModeCommand(const BeamProcess& beam) {
  return "orion capture --mode tracer --node " +
         (beam.node_name.empty() ? std::string("NODE") : beam.node_name) +
         " --cookie-file PATH (docs/tracer.md)";
}

Status CheckFunctionProbes(const BeamProcess& beam) {
  if (beam.flavor == Flavor::kJit) {
    return FailedPrecondition(
        "pid ", beam.pid, " runs the JIT flavor of the BEAM (", beam.exe,
        "): since OTP 24 function entry/return probes fire only in the interpreter. Restart "
        "the node with the emu flavor of the USDT build: \"erl -emu_flavor emu ...\", or, "
        "with no restart, use tracer mode: ", TracerModeCommand(beam));
  }
  return OkStatus();
}

namespace {

std::vector<BeamProcess> FindBeams(bool usdt_only, bool only_own_netns) {
  const ino_t own_netns = only_own_netns ? NamespaceInode(0, "net") : 0;
  std::vector<BeamProcess> beams;
  DIR* dir = opendir("/proc");
  if (!dir) return beams;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string exe = ReadLink("/proc/" + std::string(entry->d_name) + "/exe");
    if (!IsBeamBinaryName(exe.substr(exe.rfind('/') + 1))) continue;
    if (only_own_netns && NamespaceInode(static_cast<pid_t>(pid), "net") != own_netns) continue;
    auto beam = InspectOne(static_cast<pid_t>(pid));
    if (beam.ok() && usdt_only) beam = RequireUsdt(std::move(*beam));
    if (beam.ok()) beams.push_back(std::move(*beam));
  }
  closedir(dir);
  ResolveNodeNames(beams);
  return beams;
}

}  // namespace

std::vector<BeamProcess> FindUsdtBeams(bool only_own_netns) {
  return FindBeams(/*usdt_only=*/true, only_own_netns);
}
std::vector<BeamProcess> FindAllBeams(bool only_own_netns) {
  return FindBeams(/*usdt_only=*/false, only_own_netns);
}

}  // namespace orion::beam
