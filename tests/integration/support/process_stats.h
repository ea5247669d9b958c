// A process's resources read from /proc, from outside it: for tests that bound what a daemon
// holds under load without asking the daemon.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace orion::testing {

// Resident memory (VmRSS) in KiB; 0 if the process is gone.
uint64_t RssKiB(pid_t pid);

// Threads (entries of /proc/PID/task); 0 if the process is gone.
size_t ThreadCount(pid_t pid);

}  // namespace orion::testing
