#pragma once

namespace orion {

// `orion top`: the processes, mailboxes, GC, ports and schedulers of a running BEAM, seen from
// the kernel (jit and emu flavors). Full-screen view, or one JSON snapshot with --json.
int RunTopCommand(int argc, char** argv);

}  // namespace orion
