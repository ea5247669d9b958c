#pragma once

namespace orion {

// `orion ui`: the live console, a web page served on loopback behind a token (docs/ui.md).
int RunUiCommand(int argc, char** argv);

}  // namespace orion
