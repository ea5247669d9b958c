// SIGINT/SIGTERM/SIGHUP ask a running command to stop cleanly (final report, detach).
#pragma once

namespace orion::cli {

void InstallStopSignals();
bool StopRequested();

}  // namespace orion::cli
