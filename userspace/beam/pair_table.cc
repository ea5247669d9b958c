#include "userspace/beam/pair_table.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <thread>

#include "beam_dtrace_build/include/erl_orion_pair.h"
#include "userspace/beam/remote_memory.h"

namespace orion::beam {
namespace {

constexpr char kSymbol[] = "erts_orion_pair";

// The parts of a record at the offsets the emulator uses: Orion's part, then the emulator's
// header (active .. counters). The key table and names follow.
constexpr size_t kOwnerOffset = offsetof(ErtsOrionPair, owner);
constexpr size_t OwnerAddressOffset(int owner) {
  return kOwnerOffset + static_cast<size_t>(owner) * sizeof(ErtsOrionPairOwner);
}

struct EmulatorHeader {
  uint32_t active;
  uint32_t lock;
  uint32_t nslots;
  uint32_t installed;
  uint32_t breakpoints;
  uint32_t pad;
  uint64_t counter[ERTS_ORION_PAIR_COUNTERS];
};
static_assert(offsetof(ErtsOrionPairOwner, key) - offsetof(ErtsOrionPairOwner, active) ==
                  sizeof(EmulatorHeader),
              "the emulator's header of a record, as erl_orion_pair.h lays it out");

StatusOr<uint64_t> LocatePairTable(const BeamProcess& beam) {
  return LocateRemoteTable(beam.pid, beam.attach_path, beam.exe,
                           {kSymbol, sizeof(ErtsOrionPair), ERTS_ORION_PAIR_MAGIC,
                            ERTS_ORION_PAIR_VERSION, "pairing table", "0007-0008",
                            "calls are paired in BPF, at two probes per call"});
}

}  // namespace

uint32_t PairMaxRecords() { return ERTS_ORION_PAIR_OWNERS; }
uint32_t PairMaxPatterns() { return ERTS_ORION_PAIR_PATTERNS; }
uint32_t PairMaxSlots() { return ERTS_ORION_PAIR_SLOTS; }

StatusOr<PidLayout> ReadPidLayout(const BeamProcess& beam) {
  ASSIGN_OR_RETURN(uint64_t address, LocatePairTable(beam));
  ErtsOrionPidLayout raw;
  RETURN_IF_ERROR(
      ReadRemote(beam.pid, address + offsetof(ErtsOrionPair, pid_layout), &raw, sizeof(raw)));
  if (raw.data_bits == 0) {
    return Unavailable("pid ", beam.pid, "'s emulator has not written its pid layout yet");
  }
  const bool sane = raw.number_bits > 0 && raw.number_bits <= 32 &&
                    raw.number_bits <= raw.data_bits && raw.data_bits <= 60 &&
                    raw.data_bits - raw.number_bits <= 32 && raw.pix_cl_shift < 64 &&
                    raw.pix_cli_shift < 64;
  if (!sane) {
    return FailedPrecondition("pid ", beam.pid, "'s pairing table states a pid layout out of ",
                              "bounds (", raw.data_bits, " data bits, ", raw.number_bits,
                              " number bits)");
  }
  return PidLayout{raw.data_bits,    raw.number_bits,  raw.pix_mask,     raw.pix_cl_mask,
                   raw.pix_cli_mask, raw.pix_cl_shift, raw.pix_cli_shift};
}

StatusOr<PairTable> PairTable::Locate(const BeamProcess& beam) {
  ASSIGN_OR_RETURN(uint64_t address, LocatePairTable(beam));
  struct {
    uint32_t owners;
    int32_t wake_fd;
  } head;
  static_assert(offsetof(ErtsOrionPair, wake_fd) == offsetof(ErtsOrionPair, owners) + 4);
  RETURN_IF_ERROR(ReadRemote(beam.pid, address + offsetof(ErtsOrionPair, owners), &head,
                             sizeof(head)));
  if (head.owners != ERTS_ORION_PAIR_OWNERS) {
    return FailedPrecondition("pid ", beam.pid, "'s pairing table has ", head.owners,
                              " records where this orion knows ", ERTS_ORION_PAIR_OWNERS);
  }
  if (head.wake_fd < 0) {
    return NotFound("pid ", beam.pid, "'s emulator does not pair calls (a JIT flavor): calls ",
                    "are paired in BPF");
  }
  PairTable table;
  table.pid_ = beam.pid;
  table.address_ = address;
  table.wake_fd_ = head.wake_fd;
  return table;
}

Status PairTable::Wake() const {
  // The write end of the pipe ERTS's signal dispatcher thread reads (erl_orion_pair.h):
  // opening it through /proc opens that very pipe.
  const std::string path = "/proc/" + std::to_string(pid_) + "/fd/" + std::to_string(wake_fd_);
  const int fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && !ProcessAlive(pid_)) return NotFound("pid ", pid_, " exited");
    return Unavailable("opening pid ", pid_, "'s wake pipe (", path, "): ", std::strerror(errno));
  }
  struct stat st;
  Status status = OkStatus();
  const int wake = ERTS_ORION_PAIR_WAKE;
  if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
    status = FailedPrecondition(path, " is not the emulator's wake pipe");
  } else if (write(fd, &wake, sizeof(wake)) != static_cast<ssize_t>(sizeof(wake))) {
    status = Unavailable("waking pid ", pid_, "'s emulator: ", std::strerror(errno));
  }
  close(fd);
  return status;
}

// Asks the emulator for something it does on its schedulers (erl_orion_pair.h: return sites,
// flushes): numbers the request under a lock file, so that the emulator's `done` reaching it
// means it started after every change made before the request; wakes the emulator; waits up
// to `timeout` (not at all when 0) for `done`. Returns whether it was reached.
StatusOr<bool> PairTable::Request(size_t request_field, size_t done_field, const char* lock_name,
                                  std::chrono::milliseconds timeout,
                                  const std::string& context) const {
  uint32_t request = 0;
  {
    BeamFileLock lock(pid_, lock_name);
    RETURN_IF_ERROR(ReadRemote(pid_, address_ + request_field, &request, sizeof(request))
                        .WithContext(context));
    request = request + 1 == 0 ? 1 : request + 1;
    RETURN_IF_ERROR(WriteRemote(pid_, address_ + request_field, &request, sizeof(request))
                        .WithContext(context));
  }
  RETURN_IF_ERROR(Wake().WithContext(context));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    uint32_t done = 0;
    RETURN_IF_ERROR(
        ReadRemote(pid_, address_ + done_field, &done, sizeof(done)).WithContext(context));
    if (static_cast<int32_t>(done - request) >= 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(5000));
  }
}

StatusOr<bool> PairTable::SyncReturnSites(std::chrono::milliseconds timeout) const {
  const std::string context = "syncing pid " + std::to_string(pid_) + "'s return sites";
  ASSIGN_OR_RETURN(bool done,
                   Request(offsetof(ErtsOrionPair, sync_request),
                           offsetof(ErtsOrionPair, sync_done), "return-sites", timeout, context));
  if (!done && timeout.count() > 0) {
    return DeadlineExceeded("pid ", pid_, "'s emulator did not sync its return sites within ",
                            timeout.count(), " ms (its schedulers are blocked, or code ",
                            "loading holds the code write permission)");
  }
  return ReturnSites();
}

Status PairTable::Flush(std::chrono::milliseconds timeout) const {
  const std::string context = "flushing pid " + std::to_string(pid_) + "'s batches of calls";
  ASSIGN_OR_RETURN(bool done,
                   Request(offsetof(ErtsOrionPair, flush_request),
                           offsetof(ErtsOrionPair, flush_done), "flush", timeout, context));
  if (!done) {
    return DeadlineExceeded("pid ", pid_, "'s schedulers did not flush their batches of calls ",
                            "within ", timeout.count(), " ms: the calls that ended in the ",
                            "last ", ERTS_ORION_PAIR_BATCH_NS / 1000000, " ms may be missing");
  }
  return OkStatus();
}

StatusOr<bool> PairTable::ReturnSites() const {
  uint32_t on = 0;
  RETURN_IF_ERROR(
      ReadRemote(pid_, address_ + offsetof(ErtsOrionPair, return_sites), &on, sizeof(on)));
  return on != 0;
}

StatusOr<PairClaim> PairTable::Reserve(const std::vector<PairPattern>& patterns,
                                       uint32_t max_slots) {
  if (patterns.empty() || patterns.size() > ERTS_ORION_PAIR_PATTERNS) {
    return InvalidArgument("the pairing table takes 1..", ERTS_ORION_PAIR_PATTERNS,
                           " patterns, not ", patterns.size());
  }
  if (max_slots == 0 || max_slots > ERTS_ORION_PAIR_SLOTS) {
    return InvalidArgument("the pairing table measures 1..", ERTS_ORION_PAIR_SLOTS,
                           " functions per capture, not ", max_slots);
  }
  // Orion's part of the record, as it will be written.
  struct {
    uint32_t request, pid, max_slots, npatterns;
    ErtsOrionPairPattern pattern[ERTS_ORION_PAIR_PATTERNS];
  } mine = {};
  static_assert(sizeof(mine) == offsetof(ErtsOrionPairOwner, active));
  mine.pid = static_cast<uint32_t>(getpid());
  mine.max_slots = max_slots;
  mine.npatterns = static_cast<uint32_t>(patterns.size());
  for (size_t i = 0; i < patterns.size(); ++i) {
    const PairPattern& p = patterns[i];
    ErtsOrionPairPattern& out = mine.pattern[i];
    const size_t function_len = p.function ? p.function->size() : 0;
    if (p.module.empty() || p.module.size() >= ERTS_ORION_PAIR_ATOM_LEN ||
        function_len >= ERTS_ORION_PAIR_ATOM_LEN) {
      return InvalidArgument("an atom of pattern ", i + 1, " is longer than the pairing ",
                             "table's ", ERTS_ORION_PAIR_ATOM_LEN - 1, " bytes");
    }
    out.kind = !p.function ? ERTS_ORION_PAIR_MODULE
               : p.arity   ? ERTS_ORION_PAIR_MFA
                           : ERTS_ORION_PAIR_MF;
    out.arity = p.arity.value_or(0);
    out.module_len = static_cast<uint32_t>(p.module.size());
    std::memcpy(out.module, p.module.data(), p.module.size());
    out.function_len = static_cast<uint32_t>(function_len);
    if (p.function) std::memcpy(out.function, p.function->data(), function_len);
  }

  BeamFileLock lock(pid_, "pair");
  int chosen = -1;
  uint32_t generation = 0;
  for (int owner = 0; owner < ERTS_ORION_PAIR_OWNERS; ++owner) {
    const uint64_t record = address_ + OwnerAddressOffset(owner);
    uint32_t head[2];  // request, pid
    RETURN_IF_ERROR(ReadRemote(pid_, record, head, sizeof(head)).WithContext("pairing table"));
    // Held (active, or reserved and about to be) by a live orion.
    if (head[1] != 0 && ProcessAlive(static_cast<pid_t>(head[1]))) continue;
    if (head[0] != 0 || head[1] != 0) {
      // A killed orion's record: the emulator stops pairing for it (its calls in flight are
      // dropped), whether or not this claim takes it.
      const uint32_t zero[2] = {0, 0};
      RETURN_IF_ERROR(WriteRemote(pid_, record, zero, sizeof(zero)));
    }
    if (chosen >= 0) continue;
    uint32_t active;
    RETURN_IF_ERROR(ReadRemote(pid_, record + offsetof(ErtsOrionPairOwner, active), &active,
                               sizeof(active)));
    // A generation the record has never had in a row: the emulator resets for it, and calls
    // still in flight from the one before are dropped.
    generation = std::max(active, head[0]) + 1;
    if (generation == 0) generation = 1;
    chosen = owner;
  }
  if (chosen >= 0) {
    // Everything but `request`: the emulator reads the patterns only once Activate() writes
    // the new generation there.
    const uint64_t record = address_ + OwnerAddressOffset(chosen);
    RETURN_IF_ERROR(WriteRemote(pid_, record + sizeof(uint32_t),
                                reinterpret_cast<const uint8_t*>(&mine) + sizeof(uint32_t),
                                sizeof(mine) - sizeof(uint32_t)));
    return PairClaim(*this, chosen, generation);
  }
  return ResourceExhausted("pid ", pid_, " already pairs calls for ", ERTS_ORION_PAIR_OWNERS,
                           " live captures");
}

StatusOr<std::vector<PairRecord>> PairTable::Records() const {
  std::vector<PairRecord> records;
  for (int owner = 0; owner < ERTS_ORION_PAIR_OWNERS; ++owner) {
    const uint64_t record = address_ + OwnerAddressOffset(owner);
    uint32_t head[2];  // request, pid
    RETURN_IF_ERROR(ReadRemote(pid_, record, head, sizeof(head)).WithContext("pairing table"));
    if (head[1] == 0) continue;
    EmulatorHeader header;
    RETURN_IF_ERROR(ReadRemote(pid_, record + offsetof(ErtsOrionPairOwner, active), &header,
                               sizeof(header)));
    PairRecord r;
    r.owner = owner;
    r.pid = static_cast<pid_t>(head[1]);
    r.alive = ProcessAlive(r.pid);
    r.generation = head[0];
    r.functions = head[0] != 0 && header.active == head[0] ? header.nslots : 0;
    r.breakpoints = head[0] != 0 && header.installed == head[0] ? header.breakpoints : 0;
    records.push_back(r);
  }
  return records;
}

PairClaim& PairClaim::operator=(PairClaim&& other) noexcept {
  if (this != &other) {
    (void)Release();
    table_ = other.table_;
    owner_ = other.owner_;
    generation_ = other.generation_;
    breakpoints_ = other.breakpoints_;
    other.owner_ = -1;
  }
  return *this;
}

StatusOr<PairFunctions> PairClaim::Read() const {
  if (owner_ < 0) return FailedPrecondition("the pairing record was released");
  const uint64_t record = table_.address_ + OwnerAddressOffset(owner_);
  const pid_t pid = table_.pid_;
  EmulatorHeader header;
  RETURN_IF_ERROR(ReadRemote(pid, record + offsetof(ErtsOrionPairOwner, active), &header,
                             sizeof(header)));
  if (header.active != generation_) {
    return FailedPrecondition("pid ", pid, " has not started pairing for this capture yet");
  }
  PairFunctions out;
  const uint32_t n = std::min<uint32_t>(header.nslots, ERTS_ORION_PAIR_SLOTS);
  std::vector<char> names(static_cast<size_t>(n) * ERTS_ORION_PAIR_MFA_LEN);
  if (n > 0) {
    RETURN_IF_ERROR(ReadRemote(pid, record + offsetof(ErtsOrionPairOwner, name), names.data(),
                               names.size()));
  }
  uint32_t active_after;
  RETURN_IF_ERROR(ReadRemote(pid, record + offsetof(ErtsOrionPairOwner, active), &active_after,
                             sizeof(active_after)));
  if (active_after != generation_) {
    return FailedPrecondition("pid ", pid, "'s pairing record was taken over while read");
  }
  for (uint32_t slot = 0; slot < n; ++slot) {
    const char* name = names.data() + static_cast<size_t>(slot) * ERTS_ORION_PAIR_MFA_LEN;
    out.names.emplace_back(name, strnlen(name, ERTS_ORION_PAIR_MFA_LEN));
  }
  out.depth_overflow = header.counter[ERTS_ORION_PAIR_DEPTH_OVERFLOW];
  out.slots_exhausted = header.counter[ERTS_ORION_PAIR_SLOTS_EXHAUSTED];
  out.keys_full = header.counter[ERTS_ORION_PAIR_KEYS_FULL];
  out.no_memory = header.counter[ERTS_ORION_PAIR_NO_MEMORY];
  return out;
}

Status PairClaim::Activate(std::chrono::milliseconds timeout) {
  if (owner_ < 0) return FailedPrecondition("the pairing record was released");
  const uint64_t record = table_.address_ + OwnerAddressOffset(owner_);
  const std::string context = "starting to pair calls in pid " + std::to_string(table_.pid_);
  RETURN_IF_ERROR(
      WriteRemote(table_.pid_, record, &generation_, sizeof(generation_)).WithContext(context));
  RETURN_IF_ERROR(table_.Wake().WithContext(context));
  // The emulator installs the breakpoints on a scheduler, with thread progress blocked; later
  // if code loading holds the code write permission meanwhile.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    uint32_t installed[2];  // installed, breakpoints
    static_assert(offsetof(ErtsOrionPairOwner, breakpoints) ==
                  offsetof(ErtsOrionPairOwner, installed) + 4);
    RETURN_IF_ERROR(ReadRemote(table_.pid_, record + offsetof(ErtsOrionPairOwner, installed),
                               installed, sizeof(installed))
                        .WithContext(context));
    if (installed[0] == generation_) {
      breakpoints_ = installed[1];
      return OkStatus();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceeded("pid ", table_.pid_, "'s emulator did not install the capture's ",
                              "breakpoints within ", timeout.count(), " ms (its schedulers ",
                              "are blocked, or code loading holds the code write permission)");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(5000));
  }
}

Status PairClaim::Release() {
  if (owner_ < 0) return OkStatus();
  const uint64_t record = table_.address_ + OwnerAddressOffset(owner_);
  owner_ = -1;
  BeamFileLock lock(table_.pid_, "pair");
  uint32_t head[2];  // request, pid
  RETURN_IF_ERROR(ReadRemote(table_.pid_, record, head, sizeof(head)));
  if (head[0] != generation_ && !(head[0] == 0 && head[1] == static_cast<uint32_t>(getpid()))) {
    return OkStatus();  // taken over already
  }
  const uint32_t zero[2] = {0, 0};  // request, pid
  RETURN_IF_ERROR(WriteRemote(table_.pid_, record, zero, sizeof(zero))
                      .WithContext("releasing the pairing record of pid " +
                                   std::to_string(table_.pid_)));
  // The emulator removes the breakpoints no record wants any more. Not waited for: a call
  // of the released record's functions until then only finds no record wanting it.
  return table_.Wake().WithContext("releasing the pairing record of pid " +
                                   std::to_string(table_.pid_));
}

}  // namespace orion::beam
