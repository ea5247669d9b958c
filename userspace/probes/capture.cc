#include "userspace/probes/capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "bpf/capture.h"
#include "capture.skel.h"
#include "sketch/kernel_histogram.h"
#include "userspace/probes/hist_reader.h"
#include "userspace/probes/percpu.h"

namespace orion::probes {
namespace {

constexpr uint32_t kMaxFunctionsLimit = 4096;

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

StatusOr<std::unique_ptr<Capture>> Capture::Start(const std::vector<beam::BeamProcess>& beams,
                                                  const CaptureOptions& options) {
  if (beams.empty()) return InvalidArgument("no BEAM to capture from");
  if (options.patterns.empty()) return InvalidArgument("no function pattern to capture");
  if (options.max_functions == 0 || options.max_functions > kMaxFunctionsLimit) {
    return InvalidArgument("max functions must be 1..", kMaxFunctionsLimit);
  }
  for (const auto& beam : beams) RETURN_IF_ERROR(beam::CheckFunctionProbes(beam));

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
  links_.DetachAll();
  for (auto& claim : claims_) {
    if (Status s = claim.Release(); !s.ok()) spdlog::warn("{}", s.ToString());
  }
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

Status Capture::LoadAndAttach(const std::vector<beam::BeamProcess>& beams) {
  skel_ = capture_bpf__open();
  if (!skel_) return Internal("opening the capture BPF object: ", std::strerror(errno));
  const uint32_t slots = options_.max_functions;
  skel_->rodata->max_slots = slots;
  bpf_map__set_max_entries(skel_->maps.mfa_slots, slots * 2);
  bpf_map__set_max_entries(skel_->maps.slot_names, slots);
  bpf_map__set_max_entries(skel_->maps.hists, slots * CAPTURE_KINDS);
  bpf_map__set_max_entries(skel_->maps.slot_counters, slots);
  bpf_map__set_max_entries(skel_->maps.procs, options_.max_procs);
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
      {skel_->progs.orion_sched_in, "process__scheduled", false},
      {skel_->progs.orion_sched_out, "process__unscheduled", false},
  };
  for (const auto& beam : beams) {
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

StatusOr<uint64_t> Capture::Events() const {
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
                          skel_->progs.orion_sched_in,  skel_->progs.orion_sched_out};
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
  std::sort(snap.functions.begin(), snap.functions.end(),
            [](const FunctionStats& a, const FunctionStats& b) { return a.mfa < b.mfa; });
  return snap;
}

uint64_t Capture::MapMemoryBytes() const { return ObjectMapMemoryBytes(skel_->obj); }

}  // namespace orion::probes
