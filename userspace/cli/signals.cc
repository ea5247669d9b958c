#include "userspace/cli/signals.h"

#include <csignal>

namespace orion::cli {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void OnStopSignal(int) { g_stop.store(true); }

}  // namespace

void InstallStopSignals() {
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  // A peer that closes its connection must not kill the daemon or the CLI.
  signal(SIGPIPE, SIG_IGN);
}

bool StopRequested() { return g_stop.load(); }

std::atomic<bool>& StopFlag() { return g_stop; }

}  // namespace orion::cli
