// Reads a USDT semaphore in a running process: the counter a tracer increments when it
// attaches to a probe, and which the traced program tests before preparing the probe's
// arguments. Non-zero means "someone is attached to this probe now".
//
// `orion probes --list` shows them; tests use them to prove that nothing stays attached.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/status.h"

namespace orion::beam {

// The value of the semaphore at link-time address `semaphore_vaddr` of the ELF file `elf_path`
// (as given by a UsdtNote) in process `pid`, which must have that file mapped.
StatusOr<uint16_t> ReadUsdtSemaphore(pid_t pid, const std::string& elf_path,
                                     uint64_t semaphore_vaddr);

}  // namespace orion::beam
