// SIGINT/SIGTERM/SIGHUP ask a running command to stop cleanly (final report, detach).
#pragma once

#include <atomic>

namespace orion::cli {

void InstallStopSignals();
bool StopRequested();
// The flag the handlers set (a lock-free atomic, safe to set from a signal handler), for
// code that waits on a std::atomic<bool> (the daemon, remote calls).
std::atomic<bool>& StopFlag();

}  // namespace orion::cli
