// The pairing table of Orion's BEAM patches 0007-0010
// (beam_dtrace_build/include/erl_orion_pair.h, the one layout both sides compile): a
// capture's record in it makes the emu flavor pair each call of the capture's functions with
// its return and fire one `erlang:orion__call` probe per call, with integer arguments (which
// function, how it ended, wall and on-CPU ns), or, while `erlang:orion__calls` is attached
// (patch 0010), one probe per batch of 64 such calls; instead of two string-carrying probes
// per call that BPF has to pair (docs/probes.md, "Pairing in the BEAM"; docs/performance.md
// has the cost of each). Flush() delivers what the schedulers' batches hold.
//
// Orion writes a record's patterns and then its generation (`request`), and wakes the
// emulator through its wake pipe; the emulator puts an ERTS breakpoint in every function the
// records want (and takes it out of every other), then says so in `installed`. At a
// breakpoint it gives each wanted function a slot and its printed name, and drops calls of
// earlier generations. Code no capture targets runs untouched. A record of a dead orion
// (kill -9) is taken over by the next claim; until then its breakpoints stay in, but pair
// nothing while no capture has the probe attached.
//
//   ASSIGN_OR_RETURN(auto table, PairTable::Locate(beam));   // NotFound: no patch 0007
//   ASSIGN_OR_RETURN(auto claim, table.Reserve(patterns, 128));
//   ... attach to erlang:orion__function, filter on claim.owner() ...
//   RETURN_IF_ERROR(claim.Activate());         // breakpoints in: the emulator pairs from now
//   ... attach to erlang:orion__calls, then erlang:orion__call ...
//   RETURN_IF_ERROR(claim.Flush());            // before detaching: the last batches
//   ASSIGN_OR_RETURN(PairFunctions f, claim.Read());         // slot -> "mod:fun/1"
//   claim.Release();  // or the destructor
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/beam/beam_process.h"
#include "userspace/beam/pid_layout.h"

namespace orion::beam {

// One pattern, with atom names as the atom table holds them (UTF-8, unquoted).
struct PairPattern {
  std::string module;
  std::optional<std::string> function;  // none: every function of the module
  std::optional<uint32_t> arity;        // none: any arity
};

// Limits of the table (erl_orion_pair.h).
uint32_t PairMaxRecords();
uint32_t PairMaxPatterns();
uint32_t PairMaxSlots();

// What the emulator has measured for one claim: the name of every slot handed out, and what
// it could not measure.
struct PairFunctions {
  std::vector<std::string> names;  // by slot
  uint64_t depth_overflow = 0;     // calls beyond the per-process frame stack
  uint64_t slots_exhausted = 0;    // calls of wanted functions past max_slots
  uint64_t keys_full = 0;          // calls not measured: the function cache was full
  uint64_t no_memory = 0;          // calls not measured: no frame stack could be allocated
};

// A record of the table as it is (for `orion probes --list`).
struct PairRecord {
  int owner = 0;
  pid_t pid = 0;             // the orion process that holds it
  bool alive = false;        // false: killed; the next capture takes the record over
  uint32_t generation = 0;   // what the emulator pairs for (0: reserved, not started)
  uint32_t functions = 0;    // functions given a slot in the current generation
  uint32_t breakpoints = 0;  // functions carrying its breakpoint (patch 0008)
};

// The layout `beam`'s pairing table states, whatever its flavor. NotFound without a table (no
// Orion patches), FailedPrecondition for another table version or a layout out of bounds,
// Unavailable if the emulator has not written it yet (it does when its process table is set).
StatusOr<PidLayout> ReadPidLayout(const BeamProcess& beam);

class PairClaim;

class PairTable {
 public:
  // NotFound if the emulator has no pairing table (built without patches 0007-0008) or does
  // not pair (the JIT flavor); FailedPrecondition if its layout is not the one this orion
  // was built with.
  static StatusOr<PairTable> Locate(const BeamProcess& beam);

  // Reserves a free record (or one of a dead orion) for `patterns`, at most `max_slots`
  // functions; the emulator pairs for it once Activate() is called, so that the capture can
  // attach first and see every function's name (orion__function). InvalidArgument if the
  // patterns do not fit the table, ResourceExhausted when every record is held by a live
  // capture.
  StatusOr<PairClaim> Reserve(const std::vector<PairPattern>& patterns, uint32_t max_slots);

  // The records held now (by live or dead orion processes).
  StatusOr<std::vector<PairRecord>> Records() const;

  // Patch 0009: has the emulator make deallocate_return's return sites follow the enable
  // table (they fire while it filters, i.e. while a capture holds it) and, with a timeout,
  // waits for it: then returns whether they fire. Called after every change of the enable
  // table; with a zero timeout it only asks (a release need not wait).
  StatusOr<bool> SyncReturnSites(std::chrono::milliseconds timeout) const;
  // Whether they fire now, as the emulator last wrote it.
  StatusOr<bool> ReturnSites() const;

  // Patch 0010: has every scheduler fire the calls its batch holds (orion__calls), and waits
  // for it: what a capture does before it reads its final results.
  Status Flush(std::chrono::milliseconds timeout) const;

  pid_t pid() const { return pid_; }

 private:
  friend class PairClaim;
  // Has the emulator (re)install every record's breakpoints (erl_orion_pair.h).
  Status Wake() const;
  StatusOr<bool> Request(size_t request_field, size_t done_field, const char* lock_name,
                         std::chrono::milliseconds timeout, const std::string& context) const;

  pid_t pid_ = 0;
  uint64_t address_ = 0;
  int wake_fd_ = -1;
};

// One capture's record; Release() (or destruction) gives it back.
class PairClaim {
 public:
  PairClaim() = default;
  PairClaim(PairTable table, int owner, uint32_t generation)
      : table_(table), owner_(owner), generation_(generation) {}
  PairClaim(PairClaim&& other) noexcept { *this = std::move(other); }
  PairClaim& operator=(PairClaim&& other) noexcept;
  ~PairClaim() { (void)Release(); }

  // PairTable::Flush for this claim's BEAM.
  Status Flush() const { return table_.Flush(std::chrono::seconds(5)); }

  // The names and counters of this claim's generation. FailedPrecondition if the emulator
  // has not started it yet (no call of a wanted module since the claim) or it was taken over.
  StatusOr<PairFunctions> Read() const;
  // Writes the claim's generation and has the emulator put a breakpoint in every function
  // the patterns match (loaded now or later); returns once they are in, so that every call
  // from then on is paired. DeadlineExceeded if the emulator did not within `timeout`.
  Status Activate(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Status Release();

  bool held() const { return owner_ >= 0; }
  int owner() const { return owner_; }
  uint32_t generation() const { return generation_; }
  // Functions of the loaded code the patterns matched when Activate() returned.
  uint32_t breakpoints() const { return breakpoints_; }
  pid_t pid() const { return table_.pid(); }

 private:
  PairTable table_;
  int owner_ = -1;
  uint32_t generation_ = 0;
  uint32_t breakpoints_ = 0;
};

}  // namespace orion::beam
