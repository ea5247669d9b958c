// A running capture: bpf/capture.bpf.c loaded, its targets set, attached to the function
// probes of one or more BEAMs; Read() folds the kernel's per-CPU histograms into DDSketches.
//
//   CaptureOptions options{.patterns = {*ParseMfaPattern("lists:sort/1")}};
//   ASSIGN_OR_RETURN(auto capture, Capture::Start({beam}, options));
//   ... every interval:
//   ASSIGN_OR_RETURN(CaptureSnapshot snap, capture->Read());
//
// Destroying the Capture detaches everything (the links are fd-owned, so does exit or a crash).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "sketch/ddsketch.h"
#include "userspace/beam/beam_process.h"
#include "userspace/beam/enable_table.h"
#include "userspace/beam/pair_table.h"
#include "userspace/probes/capture_types.h"
#include "userspace/probes/mfa_pattern.h"
#include "userspace/probes/usdt_links.h"

struct capture_bpf;

namespace orion::probes {

struct CaptureOptions {
  std::vector<MfaPattern> patterns;
  uint32_t max_functions = 128;  // concrete MFAs with a histogram (map memory: see docs)
  uint32_t max_procs = 8192;     // Erlang processes with calls in flight at once
  // Let BEAMs with Orion's patches 0007-0008 pair calls themselves (breakpoints in the
  // targeted functions, one integer probe per call: beam/pair_table.h) where the patterns fit
  // their table; false: pair in BPF everywhere (two string probes per call), the only way on
  // other USDT builds of the emu flavor. A JIT (patch 0012) has no function probes: there the
  // emulator pairs, or nothing does.
  bool pairing = true;
};

// Why this capture cannot run on `beam` in probes mode, or "" if it can. The reason reads
// after "pid N" ("runs the JIT flavor, where ..."). Function probes fire in the emu flavor
// of a USDT build, which pairs in the BEAM or in BPF; the JIT flavor has none, so there only
// an emulator with Orion's patch 0012 can pair the calls, within its table's limits. Reads
// the BEAM's memory (the pairing table) for a JIT.
std::string WhyNotCapturable(const beam::BeamProcess& beam, const CaptureOptions& options);

// The same as a FailedPrecondition that also says what to do (tracer mode, or a node started
// where the capture can run).
Status CheckCapturable(const beam::BeamProcess& beam, const CaptureOptions& options);

struct CaptureSnapshot {
  std::vector<FunctionStats> functions;  // sorted by MFA
  LostCounters lost;
  uint64_t events = 0;   // probe hits the programs saw (an orion__calls hit: its calls)
  uint64_t matched = 0;  // entries of targeted functions
  uint32_t paired_beams = 0;  // BEAMs that pair calls themselves (patch 0007)
};

// The patterns as the pairing table of patch 0007 takes them (atom names, not printed atoms).
std::vector<beam::PairPattern> PairPatterns(const std::vector<MfaPattern>& patterns);

class Capture {
 public:
  // Loads and attaches. Every BEAM must pass CheckCapturable; a JIT BEAM whose pairing table
  // cannot hold the capture (every record held) fails it here, naming tracer mode.
  static StatusOr<std::unique_ptr<Capture>> Start(const std::vector<beam::BeamProcess>& beams,
                                                  const CaptureOptions& options);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Cumulative totals since Start.
  StatusOr<CaptureSnapshot> Read() const;
  // Probe hits the programs saw since Start: cheap (one per-CPU counter), for rate limits.
  StatusOr<uint64_t> Events() const;

  // Detaches from every BEAM now and gives back its enable-table records (Read() still works
  // on what was captured).
  void Detach();

  // Bytes of BPF map memory this capture allocated (for -v and docs/performance.md).
  uint64_t MapMemoryBytes() const;

  // How many of the BEAMs pair calls themselves (patches 0007, 0012) rather than in BPF.
  size_t PairedBeams() const { return paired_.size(); }
  // The functions of the BEAMs' loaded code that carry this capture's breakpoints (patch
  // 0008), counted when it started, over the BEAMs that pair; nullopt if none pairs (BPF
  // pairing cannot tell what the patterns match). 0: none of the patterns names a loaded
  // function there (a module loaded later gets its breakpoints then).
  std::optional<uint64_t> Breakpoints() const;

 private:
  Capture() = default;
  Status LoadAndAttach(const std::vector<beam::BeamProcess>& beams);
  Status SetTargets();
  Status ClaimEnableTable(const beam::BeamProcess& beam);
  Status ReadFunction(uint32_t slot, const std::string& mfa, FunctionStats* out) const;
  StatusOr<uint64_t> CountLiveProcs() const;
  // A record of `beam`'s pairing table for this capture, reserved (NotFound: the BEAM cannot
  // pair for it, or its records are all held; the capture pairs in BPF there).
  StatusOr<beam::PairClaim> ReservePairing(const beam::BeamProcess& beam) const;
  // Attaches to the pairing probes of `beam`, then lets its emulator pair for `claim`.
  Status StartPairing(const beam::BeamProcess& beam, beam::PairClaim claim, uint32_t base);
  // Refreshes each paired BEAM's names and counters (kept when the BEAM is gone).
  void RefreshPaired() const;

  CaptureOptions options_;
  capture_bpf* skel_ = nullptr;
  UsdtLinks links_;
  // One record per BEAM with Orion's patch 0003: its emulator formats and fires the function
  // probes for the targeted modules only (beam/enable_table.h).
  std::vector<beam::EnableTableClaim> claims_;
  // BEAMs that pair calls themselves: their record, the first of their max_functions slots
  // in the histogram maps, and what was last read of their names and counters.
  struct Paired {
    beam::PairClaim claim;
    uint32_t base = 0;
    mutable beam::PairFunctions functions;
    bool batches = false;  // orion__calls attached (patch 0010): flush before detaching
  };
  std::vector<Paired> paired_;
};

}  // namespace orion::probes
