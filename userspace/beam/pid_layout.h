// How a BEAM's pid terms hold a pid's number and serial, which orion top needs to key the
// processes whose pid terms it reads (Process.common.id at each scheduling, orion__mailbox's
// receiver; bpf/top.h, "Keys"). OTP 24-25 keep the pid's data as is in the term; OTP 26 on
// keep the process table's scrambled form of it (erts_ptab_make_id), whose masks depend on the
// table's size (+P). A patched emulator states its own layout in its pairing table
// (ReadPidLayout, pair_table.h); for a BEAM without one, PidLayoutFromCommandLine computes it
// the way erts does from what userspace can know: the erts version in the emulator's path and
// the emulator's -P argument.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace orion::beam {

struct BeamProcess;

// erl_orion_pair.h's ErtsOrionPidLayout (bpf/top.h's top_pid_layout): see the rule there.
struct PidLayout {
  uint32_t data_bits = 0;
  uint32_t number_bits = 0;
  uint64_t pix_mask = 0;
  uint64_t pix_cl_mask = 0;
  uint64_t pix_cli_mask = 0;
  uint32_t pix_cl_shift = 0;
  uint32_t pix_cli_shift = 0;

  bool operator==(const PidLayout&) const = default;
};

// Where orion top's layout came from (its JSON's "pid_layout").
enum class PidLayoutSource {
  kEmulator,     // the patched emulator's pairing table states it
  kCommandLine,  // computed from the erts version and -P (a BEAM without the table)
  kAssumed,      // neither: OTP 24-25's, which misreads pids on OTP 26+
};
std::string_view PidLayoutSourceName(PidLayoutSource source);  // "emulator", "cmdline", "assumed"

// OTP 24-25 (erts 11-13): the data as is in the low 32 bits, a 15-bit number.
PidLayout Otp24PidLayout();

// OTP 26 on (erts 14+), 64-bit: the layout of a process table made for `max_processes`
// (erts_ptab_init_table: the size rounded up to a power of 2, at most 2^27; 8 slots per
// 64-byte cache line).
PidLayout Otp26PidLayout(uint64_t max_processes);

// The default process table size (+P) of OTP 26 on: 2^20.
inline constexpr uint64_t kDefaultMaxProcesses = uint64_t{1} << 20;

// The erts major version of an emulator binary from its path, ".../erts-17.1/bin/beam.smp"
// -> 17; nullopt if the path names none.
std::optional<int> ErtsMajorVersion(std::string_view exe);

// The process table size an emulator started with `argv` (/proc/PID/cmdline of beam.smp, where
// erlexec has turned +P into -P and merged ERL_FLAGS & co.) has: its last -P before "--" that
// erts accepts (1024 .. 2^27 - 1), else the default. "-P legacy" keeps the size.
uint64_t MaxProcessesFromArgs(const std::vector<std::string>& argv);

// The layout computed for `beam` from its erts version and -P: Unavailable if its path names
// no erts version.
StatusOr<PidLayout> PidLayoutFromCommandLine(const BeamProcess& beam);

}  // namespace orion::beam
