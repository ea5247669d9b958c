// The enable table of Orion's BEAM patch 0003 (beam_dtrace_build/patches/0003-*): which
// modules' function probes a running emulator lets fire while captures run.
//
// A USDT probe has one switch for every caller (its semaphore): attaching to the function
// probes for one function makes every call in the VM format two strings and trap into the
// kernel. The patched emulator checks this table first: while `filtering` is set, an entry
// fires only for a module whose slot is set (slot = the module atom's hash, the one the
// BEAM's atom table keeps, modulo 4096), a return only when it can end a wanted call, and
// the scheduling probes only for processes that made one. docs/performance.md has the design
// and the numbers; the emulator's side is erts/emulator/beam/erl_orion_enable.h of the patch.
//
// Several captures (several orion processes, or one daemon with several captures) share a
// BEAM's table: each holds an owner record (its pid and its modules) in the table itself, so
// the bookkeeping lives and dies with the emulator. The combined slots are recomputed from
// the live records on every change, under a lock file, and records of dead orion processes
// (kill -9) are dropped then: a killed capture's filter costs other tracers events only until
// the next capture or `orion probes` on that BEAM. Filtering never hides a wanted call: the
// slots of the records that stay are set in every state the emulator can read mid-update.
//
//   ASSIGN_OR_RETURN(auto table, EnableTable::Locate(beam));   // NotFound: not patched
//   ASSIGN_OR_RETURN(auto claim, table.Claim({"lists"}, false));
//   ... capture ...
//   claim.Release();  // or the destructor
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "userspace/beam/beam_process.h"
#include "userspace/beam/pair_table.h"

namespace orion::beam {

inline constexpr uint32_t kEnableTableSlots = 4096;
inline constexpr uint32_t kEnableTableOwners = 8;

// The BEAM's atom hash (erts atom.c, atom_hash: hashpjw over the UTF-8 name, with the code
// point of a 2-byte latin-1 character hashed as one byte).
uint64_t ErtsAtomHash(std::string_view utf8_name);
// The table slot of a module: ErtsAtomHash(name) % kEnableTableSlots.
uint32_t EnableTableSlot(std::string_view module_name);

struct EnableTableOwner {
  pid_t pid = 0;
  bool alive = false;
  bool all = false;
  uint32_t slots = 0;  // slots this record sets
};

struct EnableTableState {
  bool filtering = false;
  bool all = false;
  uint32_t generation = 0;
  uint32_t slots_set = 0;  // combined
  std::vector<EnableTableOwner> owners;  // records in use
};

class EnableTableClaim;

class EnableTable {
 public:
  // NotFound if the emulator has no table (built without patch 0003: every call fires);
  // FailedPrecondition if its layout is not the one this orion knows.
  static StatusOr<EnableTable> Locate(const BeamProcess& beam);

  // Takes an owner record for this process wanting `module_names` (atom names, unquoted),
  // or every module with `all`, and turns filtering on. ResourceExhausted when every record
  // is held by a live capture. Returns once the emulator's return sites fire (patch 0009:
  // deallocate_return fires function__return only while a capture holds the table);
  // DeadlineExceeded if it did not answer in 5 s, FailedPrecondition if it could not patch
  // them (the record is given back then).
  StatusOr<EnableTableClaim> Claim(const std::vector<std::string>& module_names, bool all);

  // The table as it is (dead owners are reported, not dropped).
  StatusOr<EnableTableState> Read() const;
  // Drops the records of dead owners; filtering turns off if none is left.
  Status Prune();

  pid_t pid() const { return pid_; }

 private:
  friend class EnableTableClaim;
  Status ReleaseRecord(int index);

  // Patch 0009: the emulator's return sites follow the table (pair_table.h); none on a
  // BEAM without them (the JIT, or older patches, where deallocate_return tests the probe).
  Status SyncReturnSitesAfterRelease() const;

  pid_t pid_ = 0;
  uint64_t address_ = 0;
  std::optional<PairTable> pair_;
};

// One capture's record in a table; Release() (or destruction) gives it back.
class EnableTableClaim {
 public:
  EnableTableClaim() = default;
  EnableTableClaim(EnableTable table, int index) : table_(table), index_(index) {}
  EnableTableClaim(EnableTableClaim&& other) noexcept { *this = std::move(other); }
  EnableTableClaim& operator=(EnableTableClaim&& other) noexcept;
  ~EnableTableClaim() { (void)Release(); }

  Status Release();
  bool held() const { return index_ >= 0; }

 private:
  EnableTable table_;
  int index_ = -1;
};

}  // namespace orion::beam
