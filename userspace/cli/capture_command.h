#pragma once

namespace orion {

// `orion capture`: latency of named functions on a running BEAM, from the kernel.
int RunCaptureCommand(int argc, char** argv);

}  // namespace orion
