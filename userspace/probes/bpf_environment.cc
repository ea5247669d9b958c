#include "userspace/probes/bpf_environment.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <string>

namespace orion::probes {
namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

uint64_t EffectiveCapabilities() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  }
  return 0;
}

bool HasCap(uint64_t caps, int cap) { return (caps >> cap) & 1; }

bool g_verbose = false;

int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG && !g_verbose) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string msg(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(msg.data(), msg.size(), format, args);
  msg.resize(n);
  // The verifier's log comes as one message of many lines.
  size_t start = 0;
  while (start < msg.size()) {
    size_t end = msg.find('\n', start);
    if (end == std::string::npos) end = msg.size();
    if (end > start) {
      std::string_view line(msg.data() + start, end - start);
      if (g_verbose) {
        spdlog::info("libbpf: {}", line);
      } else {
        spdlog::debug("libbpf: {}", line);
      }
    }
    start = end + 1;
  }
  return n;
}

}  // namespace

Status CheckBpfEnvironment() {
  const uint64_t caps = EffectiveCapabilities();
  const bool privileged = geteuid() == 0 || HasCap(caps, kCapSysAdmin) ||
                          (HasCap(caps, kCapBpf) && HasCap(caps, kCapPerfmon));
  if (!privileged) {
    return PermissionDenied(
        "loading BPF programs needs root (or CAP_BPF and CAP_PERFMON); run orion with sudo");
  }
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return FailedPrecondition(
        "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): Orion's CO-RE BPF "
        "programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux >= 5.15 distribution "
        "kernels have it)");
  }
  if (access("/sys/bus/event_source/devices/uprobe/type", R_OK) != 0) {
    return FailedPrecondition(
        "this kernel has no uprobe event source (/sys/bus/event_source/devices/uprobe): USDT "
        "probes need CONFIG_UPROBE_EVENTS=y");
  }
  return OkStatus();
}

void InstallLibbpfLogger(bool verbose) {
  g_verbose = verbose;
  libbpf_set_print(LibbpfPrint);
}

}  // namespace orion::probes
