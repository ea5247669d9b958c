#pragma once

namespace orion {

// `orion daemon`: the per-host agent, a hidden Erlang node (docs/operations.md).
int RunDaemonCommand(int argc, char** argv);

}  // namespace orion
