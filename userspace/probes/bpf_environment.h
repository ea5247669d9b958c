// Checks that this process can load BPF programs and attach uprobes, with messages that
// say what is missing: privileges, kernel BTF, the uprobe PMU.
#pragma once

#include "base/status.h"

namespace orion::probes {

// OK if we are root or hold CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN), the kernel exposes
// BTF (/sys/kernel/btf/vmlinux) and uprobes (the perf "uprobe" event source).
Status CheckBpfEnvironment();

// Routes libbpf's messages to spdlog: warnings at debug level (Orion reports failures
// itself, with context), everything when `verbose`.
void InstallLibbpfLogger(bool verbose);

}  // namespace orion::probes
