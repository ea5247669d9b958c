// What is attached to a BEAM right now, read from outside: USDT semaphores in its memory,
// and perf-event uprobe links in the kernel. Used to prove that nothing stays attached.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <set>
#include <string>

#include "userspace/beam/beam_process.h"

namespace orion::testing {

// The semaphore of erlang:<probe> in the BEAM (-1 if it cannot be read).
int SemaphoreOf(const beam::BeamProcess& beam, const std::string& probe);

// The BPF programs a live process holds (the prog_id of each BPF program and link file
// descriptor in /proc/PID/fdinfo): what to look for once it is gone.
std::set<int> ProcessBpfProgramIds(pid_t pid);

// Number of BPF links in the kernel that run one of `programs` (`bpftool link show`), -1 if
// bpftool cannot tell: "nothing of that orion stays attached", whatever else runs on the
// machine (another orion, a benchmark).
int CountLinksOfPrograms(const std::set<int>& programs);

// Number of BPF link file descriptors a live process holds.
int CountProcessBpfLinks(pid_t pid);

// Number of BPF links whose program name starts with `prefix` (e.g. "orion_top": one tool's
// links, whatever else runs on the machine), -1 if bpftool cannot tell.
int CountBpfLinks(const std::string& prefix);

// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace orion::testing
