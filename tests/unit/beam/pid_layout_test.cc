// orion top keys processes by number and serial and decodes the pid terms it reads with a
// layout (bpf/top.h's top_pid_term_key). The integration tests (TopTest) prove it against
// real emulators; these pin the rule on terms made as each release's erts_ptab_make_id makes
// them (a transcription of erl_ptab.h and erl_ptab.c), with the process table of the default
// size.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/top.h"
#include "userspace/beam/pid_layout.h"

namespace orion {
namespace {

constexpr uint64_t kPidTag = 0x3;

// OTP 25 (64-bit): the data (serial << 15 | number) in the low 32 bits above the tag, the
// table index in the high 32 bits.
uint64_t Otp25Term(uint64_t number, uint64_t serial, uint64_t index) {
  return index << 32 | (serial << 15 | number) << 4 | kPidTag;
}

// OTP 26 on: the data (serial << 28 | number) with its low bits replaced by the table index
// they map to (erts_ptab_data2pix), above the tag. A table of 2^20 processes (the default
// +P), 8 slots per 64-byte cache line: what erts_ptab_init_table computes.
struct Otp29Table {
  uint64_t pix_mask = (1u << 20) - 1;
  uint64_t pix_cl_mask = (1u << 17) - 1;  // cache lines - 1
  uint32_t pix_cl_shift = 3;              // bits of an index within a cache line
  uint32_t pix_cli_shift = 17;
  uint64_t pix_cli_mask = 7;
};

uint64_t Otp29Term(const Otp29Table& t, uint64_t number, uint64_t serial) {
  const uint64_t data = serial << 28 | number;
  const uint64_t pix =
      ((data & t.pix_cl_mask) << t.pix_cl_shift) + ((data >> t.pix_cli_shift) & t.pix_cli_mask);
  return ((data & ~t.pix_mask) | pix) << 4 | kPidTag;
}

top_pid_layout Otp29Layout(const Otp29Table& t) {
  return {60, 28, t.pix_mask, t.pix_cl_mask, t.pix_cli_mask, t.pix_cl_shift, t.pix_cli_shift};
}

TEST(TopPidTermKey, Otp25LayoutIsTheDataAsIs) {
  const top_pid_layout layout = TOP_PID_LAYOUT_OTP24;
  EXPECT_EQ(top_pid_term_key(&layout, Otp25Term(89, 0, 89)), top_proc_key(89, 0));
  // Past a 15-bit number, OTP 25 counts on in the serial.
  EXPECT_EQ(top_pid_term_key(&layout, Otp25Term(7232, 1, 40000)), top_proc_key(7232, 1));
  EXPECT_EQ(top_pid_term_key(&layout, Otp25Term(32767, 8191, 262143)), top_proc_key(32767, 8191));
}

TEST(TopPidTermKey, Otp29LayoutUnscramblesTheTableIndex) {
  const Otp29Table table;
  const top_pid_layout layout = Otp29Layout(table);
  EXPECT_EQ(top_pid_term_key(&layout, Otp29Term(table, 89, 0)), top_proc_key(89, 0));
  EXPECT_EQ(top_pid_term_key(&layout, Otp29Term(table, 40000, 0)), top_proc_key(40000, 0));
  EXPECT_EQ(top_pid_term_key(&layout, Otp29Term(table, (1u << 28) - 1, 3)),
            top_proc_key((1u << 28) - 1, 3));
  EXPECT_EQ(top_pid_term_key(&layout, Otp29Term(table, 1048575, 0xffffffffu)),
            top_proc_key(1048575, 0xffffffffu));
}

TEST(TopPidTermKey, Otp29TermReadWithOtp25LayoutIsTheMisreadPid) {
  // What orion top shows on 29 with 25's layout: <0.89.0> as <0.712.0>.
  const Otp29Table table;
  const top_pid_layout otp25 = TOP_PID_LAYOUT_OTP24;
  EXPECT_EQ(top_pid_term_key(&otp25, Otp29Term(table, 89, 0)), top_proc_key(712, 0));
}


// userspace/beam/pid_layout.cc computes, for a BEAM without the pairing table, what
// erts_ptab_init_table computes from +P (TopTest.PidLayoutComputedFromTheCommandLineIsTheEmulatorsOwn
// checks it against what patched emulators state).
top_pid_layout ToBpf(const beam::PidLayout& l) {
  return {l.data_bits,   l.number_bits,  l.pix_mask, l.pix_cl_mask,
          l.pix_cli_mask, l.pix_cl_shift, l.pix_cli_shift};
}

TEST(PidLayoutRule, DefaultTableIsTheOneOtp29Makes) {
  const Otp29Table t;
  EXPECT_EQ(beam::Otp26PidLayout(beam::kDefaultMaxProcesses),
            (beam::PidLayout{60, 28, t.pix_mask, t.pix_cl_mask, t.pix_cli_mask, t.pix_cl_shift,
                             t.pix_cli_shift}));
}

TEST(PidLayoutRule, TableSizeIsRoundedUpToAPowerOfTwoAndCappedAt2To27) {
  // +P 5000: a table of 8192, 1024 cache lines of 8 slots.
  EXPECT_EQ(beam::Otp26PidLayout(5000), (beam::PidLayout{60, 28, 8191, 1023, 7, 3, 10}));
  EXPECT_EQ(beam::Otp26PidLayout(1024), (beam::PidLayout{60, 28, 1023, 127, 7, 3, 7}));
  EXPECT_EQ(beam::Otp26PidLayout(1025), beam::Otp26PidLayout(2048));
  EXPECT_EQ(beam::Otp26PidLayout((1u << 20) + 1), beam::Otp26PidLayout(1u << 21));
  EXPECT_EQ(beam::Otp26PidLayout((1u << 27) - 1),
            (beam::PidLayout{60, 28, (1u << 27) - 1, (1u << 24) - 1, 7, 3, 24}));
  EXPECT_EQ(beam::Otp24PidLayout(), (beam::PidLayout{28, 15, 0, 0, 0, 0, 0}));
}

TEST(PidLayoutRule, ComputedLayoutDecodesTermsOfTablesOfEverySize) {
  for (uint32_t bits = 10; bits <= 27; ++bits) {
    Otp29Table t;
    t.pix_mask = (uint64_t{1} << bits) - 1;
    t.pix_cl_mask = (uint64_t{1} << (bits - 3)) - 1;
    t.pix_cli_shift = bits - 3;
    const top_pid_layout layout = ToBpf(beam::Otp26PidLayout(uint64_t{1} << bits));
    for (uint64_t number : {uint64_t{0}, uint64_t{89}, uint64_t{40000}, (uint64_t{1} << 28) - 1}) {
      EXPECT_EQ(top_pid_term_key(&layout, Otp29Term(t, number, 5)), top_proc_key(number, 5))
          << bits << " bits, number " << number;
    }
  }
}

TEST(PidLayoutRule, MaxProcessesIsTheEmulatorsLastValidDashPBeforeDoubleDash) {
  using Args = std::vector<std::string>;
  EXPECT_EQ(beam::MaxProcessesFromArgs(Args{"beam.smp", "--", "-root", "/x"}), 1u << 20);
  // erlexec puts ERL_FLAGS' +P after the command line's: the last one wins, as in erl_init.c.
  EXPECT_EQ(beam::MaxProcessesFromArgs(Args{"beam.smp", "-P", "3000", "-P", "5000", "--"}), 5000u);
  EXPECT_EQ(beam::MaxProcessesFromArgs(Args{"beam.smp", "-P5000", "--"}), 5000u);
  EXPECT_EQ(beam::MaxProcessesFromArgs(Args{"beam.smp", "-P", "5000", "-P", "legacy", "--"}),
            5000u);
  // Out of erts' bounds (it would not have started), or after the emulator's options.
  EXPECT_EQ(beam::MaxProcessesFromArgs(Args{"beam.smp", "-P", "10", "--"}), 1u << 20);
  EXPECT_EQ(beam::MaxProcessesFromArgs(Args{"beam.smp", "-P", "134217728", "--"}), 1u << 20);
  EXPECT_EQ(beam::MaxProcessesFromArgs(Args{"beam.smp", "--", "-P", "5000"}), 1u << 20);
  EXPECT_EQ(beam::MaxProcessesFromArgs(Args{"beam.smp", "-P"}), 1u << 20);
}

TEST(PidLayoutRule, ErtsVersionFromTheEmulatorsPath) {
  EXPECT_EQ(beam::ErtsMajorVersion("/usr/lib/erlang/erts-13.1.5/bin/beam.smp"), 13);
  EXPECT_EQ(beam::ErtsMajorVersion("/var/cache/orion/otp-29/lib/erlang/erts-17.1/bin/beam.smp"),
            17);
  EXPECT_EQ(beam::ErtsMajorVersion("/opt/erts-14/bin/beam.smp"), 14);
  EXPECT_EQ(beam::ErtsMajorVersion("/opt/bin/beam.smp"), std::nullopt);
  EXPECT_EQ(beam::ErtsMajorVersion("/opt/erts-x/bin/beam.smp"), std::nullopt);
}

}  // namespace
}  // namespace orion
