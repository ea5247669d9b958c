#include "userspace/beam/pid_layout.h"

#include <bit>
#include <cerrno>
#include <cstdlib>

#include "userspace/beam/beam_process.h"

namespace orion::beam {
namespace {

// erts 14 is OTP 26, the first release that scrambles the table index into the term.
constexpr int kFirstScramblingErts = 14;

// erl_ptab.h / erl_process.h (OTP 26 on, 64-bit).
constexpr uint32_t kMaxTableBits = 27;                   // ERTS_PTAB_MAX_SIZE = 2^27
constexpr uint64_t kMinProcesses = 1024;                 // ERTS_MIN_PROCESSES
constexpr uint64_t kMaxProcesses = (uint64_t{1} << 27) - 1;  // ERTS_MAX_PROCESSES
constexpr uint32_t kSlotBitsPerCacheLine = 3;  // 64-byte lines of 8-byte erts_atomic_t

// erts_fit_in_bits: the bits needed to hold `value` (0 for 0).
uint32_t FitInBits(uint64_t value) { return static_cast<uint32_t>(std::bit_width(value)); }

}  // namespace

std::string_view PidLayoutSourceName(PidLayoutSource source) {
  switch (source) {
    case PidLayoutSource::kEmulator:
      return "emulator";
    case PidLayoutSource::kCommandLine:
      return "cmdline";
    case PidLayoutSource::kAssumed:
      return "assumed";
  }
  return "assumed";
}

PidLayout Otp24PidLayout() { return PidLayout{28, 15, 0, 0, 0, 0, 0}; }

PidLayout Otp26PidLayout(uint64_t max_processes) {
  // erts_ptab_init_table: bits = erts_fit_in_bits(size - 1), size = 1 << bits, capped.
  uint32_t bits = FitInBits(max_processes > 0 ? max_processes - 1 : 0);
  if (bits > kMaxTableBits) bits = kMaxTableBits;
  if (bits < kSlotBitsPerCacheLine) bits = kSlotBitsPerCacheLine;
  const uint64_t size = uint64_t{1} << bits;
  const uint64_t cache_lines = size >> kSlotBitsPerCacheLine;
  PidLayout l;
  l.data_bits = 60;    // ERTS_PTAB_ID_DATA_SIZE: 64 - the 4-bit tag
  l.number_bits = 28;  // _PID_NUM_SIZE
  l.pix_mask = size - 1;
  l.pix_cl_mask = cache_lines - 1;
  l.pix_cl_shift = FitInBits((uint64_t{1} << kSlotBitsPerCacheLine) - 1);
  l.pix_cli_shift = FitInBits(l.pix_cl_mask);
  l.pix_cli_mask = (uint64_t{1} << (bits - l.pix_cli_shift)) - 1;
  return l;
}

std::optional<int> ErtsMajorVersion(std::string_view exe) {
  // The directory "erts-MAJOR.MINOR..." the binary lives under (the last one in the path).
  const size_t at = exe.rfind("/erts-");
  if (at == std::string_view::npos) return std::nullopt;
  int major = 0;
  size_t i = at + 6, digits = 0;
  for (; i < exe.size() && exe[i] >= '0' && exe[i] <= '9' && digits < 4; ++i, ++digits) {
    major = major * 10 + (exe[i] - '0');
  }
  if (digits == 0 || (i < exe.size() && exe[i] != '.' && exe[i] != '/')) return std::nullopt;
  return major;
}

uint64_t MaxProcessesFromArgs(const std::vector<std::string>& argv) {
  uint64_t size = kDefaultMaxProcesses;
  // argv[0] is the emulator; its options end at "--" (erl_init.c's early loop).
  for (size_t i = 1; i < argv.size() && argv[i] != "--"; ++i) {
    if (argv[i].rfind("-P", 0) != 0) continue;
    // erl_init.c's get_arg: "-P5000" or "-P" "5000".
    std::string value = argv[i].substr(2);
    if (value.empty()) {
      if (i + 1 >= argv.size()) break;
      value = argv[++i];
    }
    if (value == "legacy") continue;
    errno = 0;
    const long n = std::strtol(value.c_str(), nullptr, 10);
    // erts refuses to start with a size out of these bounds: the node we see did not get it.
    if (errno == 0 && n >= static_cast<long>(kMinProcesses) &&
        n <= static_cast<long>(kMaxProcesses)) {
      size = static_cast<uint64_t>(n);
    }
  }
  return size;
}

StatusOr<PidLayout> PidLayoutFromCommandLine(const BeamProcess& beam) {
  const std::optional<int> erts = ErtsMajorVersion(beam.exe);
  if (!erts) {
    return Unavailable("the path of pid ", beam.pid, "'s emulator (", beam.exe,
                       ") names no erts version (.../erts-N.M/bin/...)");
  }
  if (*erts < kFirstScramblingErts) return Otp24PidLayout();
  return Otp26PidLayout(MaxProcessesFromArgs(beam.argv));
}

}  // namespace orion::beam
