// What is attached to a BEAM right now, read from outside: USDT semaphores in its memory,
// and perf-event uprobe links in the kernel. Used to prove that nothing stays attached.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "userspace/beam/beam_process.h"

namespace orion::testing {

// The semaphore of erlang:<probe> in the BEAM (-1 if it cannot be read).
int SemaphoreOf(const beam::BeamProcess& beam, const std::string& probe);

// Number of BPF links in the kernel whose program is one of Orion's (by program name:
// `bpftool link show`), -1 if bpftool cannot tell. Orion's programs are named "orion_*" or
// "count_probe".
int CountOrionBpfLinks();

// Number of BPF links whose program name starts with `prefix` (e.g. "orion_top": one tool's
// links, whatever else runs on the machine), -1 if bpftool cannot tell.
int CountBpfLinks(const std::string& prefix);

// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace orion::testing
