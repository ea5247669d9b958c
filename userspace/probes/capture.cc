#include "userspace/probes/capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <map>
#include <optional>

#include "beam_dtrace_build/include/erl_orion_pair.h"
#include "bpf/capture.h"
#include "capture.skel.h"
#include "sketch/kernel_histogram.h"
#include "userspace/probes/hist_reader.h"
#include "userspace/probes/percpu.h"

namespace orion::probes {

// One layout for a batched call on both sides (bpf/capture.h, erl_orion_pair.h).
static_assert(PAIR_BATCH == ERTS_ORION_PAIR_BATCH);
static_assert(sizeof(pair_call) == sizeof(ErtsOrionPairCall));
static_assert(offsetof(pair_call, how_tails) == offsetof(ErtsOrionPairCall, how_tails));
static_assert(offsetof(pair_call, wall_ns) == offsetof(ErtsOrionPairCall, wall_ns));
static_assert(offsetof(pair_call, cpu_ns) == offsetof(ErtsOrionPairCall, cpu_ns));
namespace {

constexpr uint32_t kMaxFunctionsLimit = 4096;

static_assert(PAIR_HOW_RETURN == ERTS_ORION_PAIR_RETURN &&
              PAIR_HOW_EXCEPTION == ERTS_ORION_PAIR_EXCEPTION &&
              PAIR_HOW_EXIT == ERTS_ORION_PAIR_EXIT);

template <typename T>
T SumPercpu(const std::vector<uint8_t>& raw, int cpu_count, size_t stride,
            T (*fold)(const T&, const T&)) {
  T total{};
  for (int cpu = 0; cpu < cpu_count; ++cpu) {
    T v;
    std::memcpy(&v, raw.data() + cpu * stride, sizeof(T));
    total = cpu == 0 ? v : fold(total, v);
  }
  return total;
}

slot_counters AddSlotCounters(const slot_counters& a, const slot_counters& b) {
  return {a.exceptions + b.exceptions, a.tail_calls + b.tail_calls, a.exits + b.exits};
}

}  // namespace

std::string WhyNotCapturable(const beam::BeamProcess& beam, const CaptureOptions& options) {
  if (beam.usdt_sites == 0 || beam.function_probes) return beam::WhyNoFunctionProbes(beam);
  // The JIT flavor: no function probes, so its emulator pairs the capture's calls or nothing
  // does (no BPF pairing to fall back on).
  const std::string jit = "runs the JIT flavor (no function probes since OTP 24)";
  auto table = beam::PairTable::Locate(beam);
  if (!table.ok()) {
    if (table.status().code() != StatusCode::kNotFound) {
      return jit + ", and its pairing table cannot be used: " + table.status().message();
    }
    return jit + " and its emulator does not pair calls (an OTP built without Orion's patch "
                 "0012)";
  }
  if (!options.pairing) {
    return jit + ", where only the emulator pairs calls (--pairing bpf needs function probes)";
  }
  if (options.patterns.size() > beam::PairMaxPatterns() ||
      options.max_functions > beam::PairMaxSlots()) {
    return jit + ", where only the emulator pairs calls, at most " +
           std::to_string(beam::PairMaxPatterns()) + " patterns and " +
           std::to_string(beam::PairMaxSlots()) + " functions per capture";
  }
  return "";
}

Status CheckCapturable(const beam::BeamProcess& beam, const CaptureOptions& options) {
  const std::string why = WhyNotCapturable(beam, options);
  if (why.empty()) return OkStatus();
  if (beam.usdt_sites == 0 || beam.pair_probe) {
    return FailedPrecondition("pid ", beam.pid, " ", why, ". Capture it in tracer mode: ",
                              beam::TracerModeCommand(beam));
  }
  // A USDT JIT without Orion's patches: the patched build's JIT pairs, its emu flavor fires
  // function probes.
  return FailedPrecondition("pid ", beam.pid, " ", why, ". Restart the node with Orion's ",
                            "patched build (\"$(beam_dtrace_build/build.sh --print-prefix)/bin/erl",
                            "\", whose JIT pairs calls), or, with no restart, use tracer mode: ",
                            beam::TracerModeCommand(beam));
}

std::vector<beam::PairPattern> PairPatterns(const std::vector<MfaPattern>& patterns) {
  std::vector<beam::PairPattern> out;
  for (const auto& p : patterns) {
    beam::PairPattern pp{p.module_name, std::nullopt, std::nullopt};
    if (p.function) pp.function = p.function_name;
    if (p.arity) pp.arity = static_cast<uint32_t>(*p.arity);
    out.push_back(std::move(pp));
  }
  return out;
}

StatusOr<std::unique_ptr<Capture>> Capture::Start(const std::vector<beam::BeamProcess>& beams,
                                                  const CaptureOptions& options) {
  if (beams.empty()) return InvalidArgument("no BEAM to capture from");
  if (options.patterns.empty()) return InvalidArgument("no function pattern to capture");
  if (options.max_functions == 0 || options.max_functions > kMaxFunctionsLimit) {
    return InvalidArgument("max functions must be 1..", kMaxFunctionsLimit);
  }
  for (const auto& beam : beams) RETURN_IF_ERROR(CheckCapturable(beam, options));

  std::unique_ptr<Capture> capture(new Capture());
  capture->options_ = options;
  RETURN_IF_ERROR(capture->LoadAndAttach(beams));
  return capture;
}

Capture::~Capture() {
  Detach();
  capture_bpf__destroy(skel_);
}

void Capture::Detach() {
  // The calls the BEAMs' schedulers still hold in their batches, while the programs are
  // attached: the capture ends here.
  for (const auto& p : paired_) {
    if (!p.batches || !p.claim.held()) continue;
    if (Status s = p.claim.Flush(); !s.ok() && s.code() != StatusCode::kNotFound) {
      spdlog::warn("{}", s.ToString());
    }
  }
  links_.DetachAll();
  // The names of what was paired stay readable once the records are given back.
  RefreshPaired();
  // A BEAM that is gone has nothing left to give back (NotFound): only other failures warn.
  auto warn = [](const Status& s) {
    if (!s.ok() && s.code() != StatusCode::kNotFound) spdlog::warn("{}", s.ToString());
  };
  for (auto& p : paired_) warn(p.claim.Release());
  for (auto& claim : claims_) warn(claim.Release());
  claims_.clear();
}

// Claims the BEAM's enable table for the targeted modules before anything is attached, so
// that from the first event on, the emulator fires the function probes only for them and
// keeps the per-process state that lets the returns of their calls through.
Status Capture::ClaimEnableTable(const beam::BeamProcess& beam) {
  auto table = beam::EnableTable::Locate(beam);
  if (!table.ok()) {
    if (table.status().code() != StatusCode::kNotFound) return table.status();
    spdlog::warn("{}", table.status().message());
    return OkStatus();
  }
  std::vector<std::string> modules;
  for (const auto& p : options_.patterns) modules.push_back(p.module_name);
  ASSIGN_OR_RETURN(beam::EnableTableClaim claim, table->Claim(modules, /*all=*/false));
  claims_.push_back(std::move(claim));
  spdlog::debug("pid {}: enable table claimed for {} module(s)", beam.pid, modules.size());
  return OkStatus();
}

StatusOr<beam::PairClaim> Capture::ReservePairing(const beam::BeamProcess& beam) const {
  if (!options_.pairing) return NotFound("pairing in the BEAM is off for this capture");
  if (!beam.pair_probe) {
    return NotFound("pid ", beam.pid, "'s emulator has no erlang:orion__call probe (no "
                    "Orion patches 0007-0008): calls are paired in BPF, at two probes per call");
  }
  if (options_.patterns.size() > beam::PairMaxPatterns() ||
      options_.max_functions > beam::PairMaxSlots()) {
    return NotFound("more than ", beam::PairMaxPatterns(), " patterns or ",
                    beam::PairMaxSlots(), " functions: calls are paired in BPF");
  }
  ASSIGN_OR_RETURN(beam::PairTable table, beam::PairTable::Locate(beam));
  auto claim = table.Reserve(PairPatterns(options_.patterns), options_.max_functions);
  // Every record held by a live capture, or an atom longer than the table holds: pair in BPF
  // (the emu flavor), or not at all (the JIT: LoadAndAttach says so).
  if (!claim.ok() && (claim.status().code() == StatusCode::kResourceExhausted ||
                      claim.status().code() == StatusCode::kInvalidArgument)) {
    if (beam.function_probes) {
      spdlog::info("pid {}: {}; this capture's calls there are paired in BPF", beam.pid,
                   claim.status().message());
    }
    return NotFound(claim.status().message());
  }
  return claim;
}

Status Capture::StartPairing(const beam::BeamProcess& beam, beam::PairClaim claim,
                             uint32_t base) {
  pair_owner_key key = {static_cast<__u32>(beam.pid), static_cast<__u32>(claim.owner())};
  if (bpf_map__update_elem(skel_->maps.pair_owners, &key, sizeof(key), &base, sizeof(base),
                           BPF_ANY)) {
    return ResourceExhausted("too many BEAMs pairing in one capture");
  }
  spdlog::debug("pid {}: pairs calls in the BEAM (record {}, generation {})", beam.pid,
                claim.owner(), claim.generation());
  // orion__function before the emulator starts pairing for the record, so that no name is
  // missed; orion__call after it, so that once its semaphore is up (what the tests, and any
  // observer of the BEAM, take for "attached") the record is active.
  RETURN_IF_ERROR(links_.Attach(skel_->progs.orion_pair_function, beam.pid, beam.attach_path,
                                "orion__function", 0));
  RETURN_IF_ERROR(claim.Activate());
  spdlog::debug("pid {}: breakpoints in {} function(s)", beam.pid, claim.breakpoints());
  // Batches (patch 0010) before orion__call, whose semaphore turns pairing on: from the first
  // paired call on, the emulator fires one probe per batch of ended calls.
  if (beam.batch_probe) {
    RETURN_IF_ERROR(links_.Attach(skel_->progs.orion_pair_calls, beam.pid, beam.attach_path,
                                  "orion__calls", 0));
  }
  RETURN_IF_ERROR(links_.Attach(skel_->progs.orion_pair_call, beam.pid, beam.attach_path,
                                "orion__call", 0));
  paired_.push_back({std::move(claim), base, {}, beam.batch_probe});
  return OkStatus();
}

void Capture::RefreshPaired() const {
  for (const auto& p : paired_) {
    if (!p.claim.held()) continue;
    auto functions = p.claim.Read();
    if (functions.ok()) {
      p.functions = std::move(*functions);
    } else {
      spdlog::debug("pairing record of pid {}: {}", p.claim.pid(), functions.status().message());
    }
  }
}

Status Capture::LoadAndAttach(const std::vector<beam::BeamProcess>& beams) {
  // Which BEAMs pair calls themselves: a record of their pairing table is reserved now, so
  // that the maps are sized for what runs. BPF pairing (any other BEAM) shares the first
  // max_functions slots, and each BEAM that pairs gets max_functions slots of its own after
  // them; the per-process map of BPF pairing is only as large as it needs to be.
  std::vector<std::optional<beam::PairClaim>> reserved;
  uint32_t pairing = 0;
  for (const auto& beam : beams) {
    auto claim = ReservePairing(beam);
    if (!claim.ok() && claim.status().code() != StatusCode::kNotFound) {
      return claim.status().WithContext("pid " + std::to_string(beam.pid));
    }
    if (!claim.ok() && !beam.function_probes) {
      // The JIT flavor: no function probes for BPF to pair from.
      return FailedPrecondition("pid ", beam.pid, " runs the JIT flavor, where only its ",
                                "emulator pairs calls, and it cannot pair this capture: ",
                                claim.status().message(), ". Capture it in tracer mode: ",
                                beam::TracerModeCommand(beam));
    }
    if (!claim.ok()) spdlog::debug("{}", claim.status().message());
    reserved.push_back(claim.ok() ? std::optional(std::move(*claim)) : std::nullopt);
    pairing += claim.ok();
  }
  const bool bpf_pairing = pairing < beams.size();
  skel_ = capture_bpf__open();
  if (!skel_) return Internal("opening the capture BPF object: ", std::strerror(errno));
  const uint32_t slots = options_.max_functions;
  const uint32_t bpf_slots = bpf_pairing ? slots : 0;
  const uint32_t all_slots = bpf_slots + slots * pairing;
  skel_->rodata->max_slots = slots;
  bpf_map__set_max_entries(skel_->maps.mfa_slots, bpf_pairing ? slots * 2 : 1);
  bpf_map__set_max_entries(skel_->maps.slot_names, all_slots);
  bpf_map__set_max_entries(skel_->maps.hists, all_slots * CAPTURE_KINDS);
  bpf_map__set_max_entries(skel_->maps.slot_counters, all_slots);
  bpf_map__set_max_entries(skel_->maps.procs, bpf_pairing ? options_.max_procs : 1);
  if (int err = capture_bpf__load(skel_)) {
    return Internal("loading the capture BPF programs: ", std::strerror(-err),
                    " (run with -v for the verifier's log)");
  }
  RETURN_IF_ERROR(SetTargets());

  struct Attachment {
    bpf_program* prog;
    const char* probe;
    bool needs_patch;  // Orion's exception__catch (patch 0002)
  };
  const Attachment attachments[] = {
      {skel_->progs.orion_entry, "global__function__entry", false},
      {skel_->progs.orion_entry, "local__function__entry", false},
      {skel_->progs.orion_return, "function__return", false},
      {skel_->progs.orion_catch, "exception__catch", true},
      {skel_->progs.orion_proc_exit, "process__exit", false},
      // erlang:hibernate/3 discards the stack: its calls in flight end as at an exit, as the
      // emulator's pairing ends them (patch 0012).
      {skel_->progs.orion_proc_exit, "process__hibernate", false},
      {skel_->progs.orion_sched_in, "process__scheduled", false},
      {skel_->progs.orion_sched_out, "process__unscheduled", false},
  };
  for (size_t i = 0; i < beams.size(); ++i) {
    const auto& beam = beams[i];
    if (reserved[i]) {
      // No enable-table claim: only the function probes read it, and a BEAM that pairs the
      // capture's calls itself reaches them through breakpoints (patch 0008).
      const uint32_t base = bpf_slots + slots * static_cast<uint32_t>(paired_.size());
      RETURN_IF_ERROR(StartPairing(beam, std::move(*reserved[i]), base)
                          .WithContext("pid " + std::to_string(beam.pid)));
      continue;
    }
    RETURN_IF_ERROR(ClaimEnableTable(beam).WithContext("pid " + std::to_string(beam.pid)));
    for (const auto& a : attachments) {
      if (a.needs_patch && !beam.exception_probe) {
        spdlog::warn(
            "pid {} has no erlang:exception__catch probe (an OTP build without Orion's patches): "
            "calls that raise are noticed at the caller's next return",
            beam.pid);
        continue;
      }
      RETURN_IF_ERROR(links_.Attach(a.prog, beam.pid, beam.attach_path, a.probe, 0)
                          .WithContext("pid " + std::to_string(beam.pid)));
    }
  }
  spdlog::debug("capture attached: {} links, {} MiB of BPF maps", links_.size(),
                MapMemoryBytes() >> 20);
  return OkStatus();
}

Status Capture::SetTargets() {
  std::map<uint64_t, uint32_t> modules;
  for (const auto& p : options_.patterns) {
    const uint64_t module_hash = Fnv1a(p.module);
    uint8_t one = 1;
    if (!p.function) {
      modules[module_hash] |= TARGET_MODULE_ALL;
      continue;
    }
    target_key key = {};
    if (p.arity) {
      modules[module_hash] |= TARGET_MODULE_MFA;
      key.hash = Fnv1a(p.module + ":" + *p.function + "/" + std::to_string(*p.arity));
      key.kind = TARGET_KIND_MFA;
    } else {
      modules[module_hash] |= TARGET_MODULE_MF;
      key.hash = Fnv1a(p.module + ":" + *p.function);
      key.kind = TARGET_KIND_MF;
    }
    if (bpf_map__update_elem(skel_->maps.targets, &key, sizeof(key), &one, sizeof(one), BPF_ANY)) {
      return ResourceExhausted("too many patterns (the targets map holds ",
                               bpf_map__max_entries(skel_->maps.targets), ")");
    }
  }
  for (const auto& [hash, flags] : modules) {
    if (bpf_map__update_elem(skel_->maps.target_modules, &hash, sizeof(hash), &flags,
                             sizeof(flags), BPF_ANY)) {
      return ResourceExhausted("too many modules in the patterns (the map holds ",
                               bpf_map__max_entries(skel_->maps.target_modules), ")");
    }
  }
  return OkStatus();
}

Status Capture::ReadFunction(uint32_t slot, const std::string& mfa, FunctionStats* out) const {
  out->mfa = mfa;
  const int cpus = PossibleCpus();
  for (uint32_t kind = 0; kind < CAPTURE_KINDS; ++kind) {
    const uint32_t key = slot * CAPTURE_KINDS + kind;
    RETURN_IF_ERROR(ReadKernelHistogram(bpf_map__fd(skel_->maps.hists), &key,
                                        kind == CAPTURE_WALL ? &out->wall : &out->cpu));
  }
  std::vector<uint8_t> raw;
  RETURN_IF_ERROR(LookupPercpu(bpf_map__fd(skel_->maps.slot_counters), &slot,
                               sizeof(slot_counters), &raw));
  slot_counters c = SumPercpu<slot_counters>(raw, cpus, (sizeof(slot_counters) + 7) & ~size_t{7},
                                             AddSlotCounters);
  out->exceptions = c.exceptions;
  out->tail_calls = c.tail_calls;
  out->exits = c.exits;
  return OkStatus();
}

StatusOr<uint64_t> Capture::CountLiveProcs() const {
  const int fd = bpf_map__fd(skel_->maps.procs);
  proc_key key, next;
  uint64_t n = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    ++n;
    key = next;
    prev = &key;
  }
  return n;
}

std::optional<uint64_t> Capture::Breakpoints() const {
  if (paired_.empty()) return std::nullopt;
  uint64_t total = 0;
  for (const auto& p : paired_) total += p.claim.breakpoints();
  return total;
}

StatusOr<uint64_t> Capture::Events() const {
  // Called about once a second while a capture runs: also the moment to keep what the pairing
  // BEAMs say they could not measure (and their names for the slots, should an orion__function
  // event have been missed), which is gone with a BEAM that exits before Read().
  RefreshPaired();
  return SumPercpuU64(bpf_map__fd(skel_->maps.counters), CAPTURE_EVENTS);
}

StatusOr<CaptureSnapshot> Capture::Read() const {
  CaptureSnapshot snap;
  uint64_t counters[CAPTURE_COUNTER_COUNT] = {};
  for (uint32_t i = 0; i < CAPTURE_COUNTER_COUNT; ++i) {
    ASSIGN_OR_RETURN(counters[i], SumPercpuU64(bpf_map__fd(skel_->maps.counters), i));
  }
  snap.events = counters[CAPTURE_EVENTS];
  snap.matched = counters[CAPTURE_MATCHED];
  snap.lost.depth_overflow = counters[CAPTURE_DEPTH_OVERFLOW];
  snap.lost.functions_over_limit = counters[CAPTURE_SLOTS_EXHAUSTED];
  snap.lost.mfa_truncated = counters[CAPTURE_MFA_TRUNCATED];
  snap.lost.read_errors = counters[CAPTURE_READ_ERRORS];
  ASSIGN_OR_RETURN(uint64_t live, CountLiveProcs());
  const uint64_t inserted = counters[CAPTURE_PROCS_INSERTED];
  const uint64_t deleted = counters[CAPTURE_PROCS_DELETED];
  snap.lost.frames_evicted = inserted > deleted + live ? inserted - deleted - live : 0;

  bpf_program* progs[] = {skel_->progs.orion_entry,     skel_->progs.orion_return,
                          skel_->progs.orion_catch,     skel_->progs.orion_proc_exit,
                          skel_->progs.orion_sched_in,  skel_->progs.orion_sched_out,
                          skel_->progs.orion_pair_call, skel_->progs.orion_pair_calls};
  for (bpf_program* prog : progs) {
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
      snap.lost.recursion_misses += info.recursion_misses;
    }
  }

  // Every function the programs gave a slot: mfa hash -> slot, and the slot's name.
  const int slots_fd = bpf_map__fd(skel_->maps.mfa_slots);
  uint64_t hash, next_hash;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(slots_fd, prev, &next_hash) == 0) {
    hash = next_hash;
    prev = &hash;
    uint32_t slot;
    if (bpf_map_lookup_elem(slots_fd, &hash, &slot) != 0) continue;
    char name[CAPTURE_MFA_LEN] = {};
    if (bpf_map__lookup_elem(skel_->maps.slot_names, &slot, sizeof(slot), name, sizeof(name), 0)) {
      continue;
    }
    std::string mfa(name, strnlen(name, sizeof(name)));
    const bool wanted = std::any_of(options_.patterns.begin(), options_.patterns.end(),
                                    [&](const MfaPattern& p) { return p.Matches(mfa); });
    if (!wanted) {
      ++snap.lost.hash_collisions;
      continue;
    }
    FunctionStats stats;
    RETURN_IF_ERROR(ReadFunction(slot, mfa, &stats));
    snap.functions.push_back(std::move(stats));
  }
  // Functions the BEAMs paired themselves, by the names they gave their slots; a function
  // measured in several BEAMs (or also by BPF pairing) is one entry.
  RefreshPaired();
  for (const auto& p : paired_) {
    snap.lost.depth_overflow += p.functions.depth_overflow;
    snap.lost.functions_over_limit += p.functions.slots_exhausted + p.functions.keys_full;
    snap.lost.frames_evicted += p.functions.no_memory;
    for (uint32_t local = 0; local < options_.max_functions; ++local) {
      // The name from orion__function; from the BEAM's memory if that event was missed.
      const uint32_t slot = p.base + local;
      char name[CAPTURE_MFA_LEN] = {};
      if (bpf_map__lookup_elem(skel_->maps.slot_names, &slot, sizeof(slot), name, sizeof(name),
                               0) != 0) {
        continue;
      }
      std::string mfa(name, strnlen(name, sizeof(name)));
      if (mfa.empty() && local < p.functions.names.size()) mfa = p.functions.names[local];
      if (mfa.empty()) continue;
      FunctionStats stats;
      RETURN_IF_ERROR(ReadFunction(slot, mfa, &stats));
      auto same = std::find_if(snap.functions.begin(), snap.functions.end(),
                               [&](const FunctionStats& f) { return f.mfa == stats.mfa; });
      if (same == snap.functions.end()) {
        snap.functions.push_back(std::move(stats));
      } else {
        RETURN_IF_ERROR(MergeFunctionStats(*same, stats));
      }
    }
  }
  snap.paired_beams = static_cast<uint32_t>(paired_.size());
  std::sort(snap.functions.begin(), snap.functions.end(),
            [](const FunctionStats& a, const FunctionStats& b) { return a.mfa < b.mfa; });
  return snap;
}

uint64_t Capture::MapMemoryBytes() const { return ObjectMapMemoryBytes(skel_->obj); }

}  // namespace orion::probes
