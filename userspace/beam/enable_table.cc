#include "userspace/beam/enable_table.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>

#include "userspace/beam/remote_memory.h"

namespace orion::beam {
namespace {

// The emulator's ErtsOrionEnable (erl_orion_enable.h of patch 0003), version 1.
constexpr uint32_t kMagic = 0x4f52494fU;  // "ORIO"
constexpr uint32_t kVersion = 1;
constexpr char kSymbol[] = "erts_orion_enable";

struct RemoteOwner {
  uint32_t pid;
  uint32_t all;
  uint8_t module[kEnableTableSlots / 8];
};

struct RemoteTable {
  uint32_t magic;
  uint32_t version;
  uint32_t size;
  uint32_t filtering;
  uint32_t all;
  uint32_t generation;
  uint8_t module[kEnableTableSlots];
  RemoteOwner owner[kEnableTableOwners];
};
static_assert(sizeof(RemoteTable) == 8280, "the layout of erl_orion_enable.h, version 1");

bool Bit(const uint8_t* bits, uint32_t slot) { return bits[slot / 8] & (1u << (slot % 8)); }

Status ReadTable(pid_t pid, uint64_t address, RemoteTable* t) {
  return ReadRemote(pid, address, t, sizeof(*t)).WithContext("the enable table");
}

// Writes the combined slots of the live records and the flags, in an order that never hides
// a wanted call: slots before `filtering` goes up, `filtering` before the slots go down.
Status Publish(pid_t pid, uint64_t address, RemoteTable* t) {
  RemoteTable next = *t;
  bool any = false, all = false;
  std::memset(next.module, 0, sizeof(next.module));
  for (auto& o : next.owner) {
    if (o.pid == 0) continue;
    any = true;
    all = all || o.all;
    for (uint32_t slot = 0; slot < kEnableTableSlots; ++slot) {
      if (Bit(o.module, slot)) next.module[slot] = 1;
    }
  }
  next.all = all;
  next.filtering = any;
  auto write_field = [&](size_t offset, size_t size, const void* from) {
    return WriteRemote(pid, address + offset, static_cast<const uint8_t*>(from) + offset, size);
  };
  const auto* n = &next;
  RETURN_IF_ERROR(write_field(offsetof(RemoteTable, owner), sizeof(next.owner), n));
  if (any) {
    RETURN_IF_ERROR(write_field(offsetof(RemoteTable, module), sizeof(next.module), n));
    RETURN_IF_ERROR(write_field(offsetof(RemoteTable, all), sizeof(next.all), n));
    if (!t->filtering) {
      // A new generation: processes stamped by an earlier capture stop firing the
      // scheduling probes until they make a wanted call again.
      next.generation = t->generation + 1 == 0 ? 1 : t->generation + 1;
      RETURN_IF_ERROR(write_field(offsetof(RemoteTable, generation), sizeof(next.generation), n));
      RETURN_IF_ERROR(write_field(offsetof(RemoteTable, filtering), sizeof(next.filtering), n));
    }
  } else {
    RETURN_IF_ERROR(write_field(offsetof(RemoteTable, filtering), sizeof(next.filtering), n));
    RETURN_IF_ERROR(write_field(offsetof(RemoteTable, all), sizeof(next.all), n));
    RETURN_IF_ERROR(write_field(offsetof(RemoteTable, module), sizeof(next.module), n));
  }
  *t = next;
  return OkStatus();
}

bool DropDeadOwners(RemoteTable* t) {
  bool dropped = false;
  for (auto& o : t->owner) {
    if (o.pid != 0 && !ProcessAlive(static_cast<pid_t>(o.pid))) {
      std::memset(&o, 0, sizeof(o));
      dropped = true;
    }
  }
  return dropped;
}

}  // namespace

uint64_t ErtsAtomHash(std::string_view name) {
  // atom.c: HashValue is a UWord; `v` is a byte, so the latin-1 code point is truncated to
  // 8 bits exactly as the emulator does.
  uint64_t h = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(name.data());
  size_t len = name.size();
  while (len--) {
    uint8_t v = *p++;
    if (len && (v & 0xFE) == 0xC2 && (*p & 0xC0) == 0x80) {
      v = static_cast<uint8_t>((v << 6) | (*p & 0x3F));
      p++;
      len--;
    }
    h = (h << 4) + v;
    if (uint64_t g = h & 0xf0000000ULL) {
      h ^= (g >> 24);
      h ^= g;
    }
  }
  return h;
}

uint32_t EnableTableSlot(std::string_view module_name) {
  return static_cast<uint32_t>(ErtsAtomHash(module_name) & (kEnableTableSlots - 1));
}

StatusOr<EnableTable> EnableTable::Locate(const BeamProcess& beam) {
  ASSIGN_OR_RETURN(uint64_t address,
                   LocateRemoteTable(beam.pid, beam.attach_path, beam.exe,
                                     {kSymbol, sizeof(RemoteTable), kMagic, kVersion,
                                      "enable table", "0003",
                                      "every call fires the probes while a capture runs; "
                                      "rebuild with beam_dtrace_build/build.sh"}));
  EnableTable table;
  table.pid_ = beam.pid;
  table.address_ = address;
  if (auto pair = PairTable::Locate(beam); pair.ok()) table.pair_ = *pair;
  return table;
}

Status EnableTable::SyncReturnSitesAfterRelease() const {
  if (!pair_) return OkStatus();
  // Not waited for: until the emulator turns them off, they only fire returns nobody wants.
  auto on = pair_->SyncReturnSites(std::chrono::milliseconds(0));
  return on.ok() || on.status().code() == StatusCode::kNotFound ? OkStatus() : on.status();
}

StatusOr<EnableTableClaim> EnableTable::Claim(const std::vector<std::string>& module_names,
                                              bool all) {
  BeamFileLock lock(pid_, "enable");
  RemoteTable t;
  RETURN_IF_ERROR(ReadTable(pid_, address_, &t));
  DropDeadOwners(&t);
  int index = -1;
  for (uint32_t i = 0; i < kEnableTableOwners; ++i) {
    if (t.owner[i].pid == 0) {
      index = static_cast<int>(i);
      break;
    }
  }
  if (index < 0) {
    return ResourceExhausted("pid ", pid_, " already has ", kEnableTableOwners,
                             " captures running (the enable table's records are all held); "
                             "end one, or wait");
  }
  RemoteOwner& o = t.owner[index];
  std::memset(&o, 0, sizeof(o));
  o.pid = static_cast<uint32_t>(getpid());
  o.all = all;
  for (const auto& name : module_names) {
    const uint32_t slot = EnableTableSlot(name);
    o.module[slot / 8] |= static_cast<uint8_t>(1u << (slot % 8));
  }
  RETURN_IF_ERROR(Publish(pid_, address_, &t));
  EnableTableClaim claim(*this, index);
  lock.Unlock();
  if (!pair_) return claim;
  auto on = pair_->SyncReturnSites(std::chrono::seconds(5));
  if (!on.ok()) return on.status();  // the claim's destructor gives the record back
  if (!*on) {
    return FailedPrecondition("pid ", pid_, "'s emulator could not turn on the return probes ",
                              "of deallocate_return (its stderr says why): calls would be ",
                              "paired without their returns");
  }
  return claim;
}

Status EnableTable::ReleaseRecord(int index) {
  BeamFileLock lock(pid_, "enable");
  RemoteTable t;
  RETURN_IF_ERROR(ReadTable(pid_, address_, &t));
  if (index >= 0 && index < static_cast<int>(kEnableTableOwners) &&
      t.owner[index].pid == static_cast<uint32_t>(getpid())) {
    std::memset(&t.owner[index], 0, sizeof(t.owner[index]));
  }
  DropDeadOwners(&t);
  RETURN_IF_ERROR(Publish(pid_, address_, &t));
  return SyncReturnSitesAfterRelease();
}

Status EnableTable::Prune() {
  BeamFileLock lock(pid_, "enable");
  RemoteTable t;
  RETURN_IF_ERROR(ReadTable(pid_, address_, &t));
  bool owned = false;
  for (const auto& o : t.owner) owned = owned || o.pid != 0;
  // A record dropped, or flags left by an orion killed halfway through a change.
  if (!DropDeadOwners(&t) && owned == (t.filtering != 0)) return OkStatus();
  RETURN_IF_ERROR(Publish(pid_, address_, &t));
  return SyncReturnSitesAfterRelease();
}

StatusOr<EnableTableState> EnableTable::Read() const {
  RemoteTable t;
  RETURN_IF_ERROR(ReadTable(pid_, address_, &t));
  EnableTableState s;
  s.filtering = t.filtering != 0;
  s.all = t.all != 0;
  s.generation = t.generation;
  for (uint8_t b : t.module) s.slots_set += b != 0;
  for (const auto& o : t.owner) {
    if (o.pid == 0) continue;
    EnableTableOwner owner;
    owner.pid = static_cast<pid_t>(o.pid);
    owner.alive = ProcessAlive(owner.pid);
    owner.all = o.all;
    for (uint32_t slot = 0; slot < kEnableTableSlots; ++slot) owner.slots += Bit(o.module, slot);
    s.owners.push_back(owner);
  }
  return s;
}

EnableTableClaim& EnableTableClaim::operator=(EnableTableClaim&& other) noexcept {
  if (this != &other) {
    (void)Release();
    table_ = other.table_;
    index_ = other.index_;
    other.index_ = -1;
  }
  return *this;
}

Status EnableTableClaim::Release() {
  if (index_ < 0) return OkStatus();
  const int index = index_;
  index_ = -1;
  return table_.ReleaseRecord(index);
}

}  // namespace orion::beam
