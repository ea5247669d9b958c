#pragma once

namespace orion {

// `orion probes`: lists a BEAM's erlang USDT probes and counts how often they fire.
int RunProbesCommand(int argc, char** argv);

}  // namespace orion
