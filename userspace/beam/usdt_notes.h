// Reads the USDT probe notes (.note.stapsdt) of an ELF binary.
//
// Used to tell whether a BEAM was built with --with-dynamic-trace=systemtap, which flavor
// it runs (only the emu flavor has `function__return` sites), and which of Orion's patched
// probes it carries, before anything is attached.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace orion::beam {

struct UsdtNote {
  std::string provider;  // "erlang"
  std::string name;      // "function__return" (double underscores, as in the ELF note)
  uint64_t pc = 0;
  uint64_t semaphore = 0;  // link-time address of the semaphore, 0 if none
  std::string args;        // argument spec, e.g. "8@%rbp 8@%r12 -4@%ebx"
};

// All stapsdt notes of the ELF file at `path` (one per probe site). An ELF file without
// notes gives an empty vector; a file that is not ELF is an error.
StatusOr<std::vector<UsdtNote>> ReadUsdtNotes(const std::string& path);

// Number of sites of provider:name among `notes`.
int CountSites(const std::vector<UsdtNote>& notes, std::string_view provider,
               std::string_view name);

}  // namespace orion::beam
