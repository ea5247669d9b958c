// What every command shares: logging set-up, exit codes, and reporting a Status.
#pragma once

#include <string_view>

#include "base/status.h"

namespace orion::cli {

// Exit codes of every orion command (documented in docs/capture.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,           // runtime failure (BPF, I/O, a peer)
  kExitUsage = 2,             // bad flags or input: the message says which
  kExitPermission = 3,        // not root / no CAP_BPF
  kExitTarget = 4,            // the target cannot be profiled: gone, not a BEAM, no probes, JIT
};

// Logs go to stderr through spdlog ("orion: warning: ..."); stdout is for results.
void ConfigureLogging(bool verbose);

// Prints "orion <command>: <message>" to stderr and returns the exit code for `status`.
int ReportError(std::string_view command, const Status& status);

// Parses a positive number of seconds ("5", "0.5"); false if it is not one.
bool ParseSeconds(const char* text, double* seconds);

}  // namespace orion::cli
