#include "userspace/probes/top.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>

#include "bpf/top.h"
#include "top.skel.h"
#include "userspace/beam/pair_table.h"
#include "userspace/probes/percpu.h"

namespace orion::probes {
namespace {

constexpr struct {
  uint32_t group;
  std::string_view name;
} kGroupNames[] = {{kTopSched, "sched"},
                   {kTopOffCpu, "offcpu"},
                   {kTopMessages, "messages"},
                   {kTopGc, "gc"},
                   {kTopPorts, "ports"}};

uint64_t MonotonicNs() {  // the clock of bpf_ktime_get_ns()
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct PidLayoutChoice {
  beam::PidLayout layout;
  beam::PidLayoutSource source;
};

// The layout the patched emulator states in its pairing table; else the one computed from the
// erts version and -P (a BEAM without Orion's patches, or with an older table); else OTP
// 24-25's, said plainly, as it misreads pids on OTP 26 and later.
PidLayoutChoice ChoosePidLayout(const beam::BeamProcess& beam) {
  const StatusOr<beam::PidLayout> computed = beam::PidLayoutFromCommandLine(beam);
  const StatusOr<beam::PidLayout> stated = beam::ReadPidLayout(beam);
  if (stated.ok()) {
    if (computed.ok() && !(*computed == *stated)) {
      spdlog::warn(
          "pid {}'s emulator states a pid layout other than the one computed from its erts "
          "version and -P (userspace/beam/pid_layout.cc): using the emulator's",
          beam.pid);
    }
    return {*stated, beam::PidLayoutSource::kEmulator};
  }
  if (stated.status().code() != StatusCode::kNotFound) {
    spdlog::debug("no pid layout from the pairing table: {}", stated.status().message());
  }
  if (computed.ok()) return {*computed, beam::PidLayoutSource::kCommandLine};
  spdlog::warn(
      "{}: the pids top reads from the emulator's terms (scheduled processes, mailboxes) are "
      "decoded as OTP 24-25 lay them out; on OTP 26 or later they show in the process table's "
      "scrambled form (docs/top.md)",
      computed.status().message());
  return {beam::Otp24PidLayout(), beam::PidLayoutSource::kAssumed};
}

std::string FixedString(const char* s, size_t max) {
  return std::string(s, strnlen(s, max));
}

// "<0.N.S>" of a process key (bpf/top.h).
std::string PidString(uint64_t key) {
  return "<0." + std::to_string(key & 0xffffffff) + "." + std::to_string(key >> 32) + ">";
}

// The function every flavor's schedulers call between two processes (bpf/top.h, "sched").
constexpr char kScheduleFunction[] = "erts_schedule";

// Every entry of a hash map, read in batches (safe while the programs update the map).
template <typename K, typename V>
Status ReadMap(int fd, std::vector<std::pair<K, V>>* out) {
  constexpr uint32_t kBatch = 256;
  std::vector<K> keys(kBatch);
  std::vector<V> values(kBatch);
  uint64_t in_token = 0, out_token = 0;  // the kernel's position (a bucket number)
  bool first = true;
  out->clear();
  for (;;) {
    uint32_t count = kBatch;
    const int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_token, &out_token, keys.data(),
                                         values.data(), &count, nullptr);
    const int saved_errno = errno;
    for (uint32_t i = 0; i < count; ++i) out->emplace_back(keys[i], values[i]);
    if (err != 0) {
      if (saved_errno == ENOENT) return OkStatus();
      return Internal("reading a BPF map: ", std::strerror(saved_errno));
    }
    in_token = out_token;
    first = false;
  }
}

uint64_t Minus(uint64_t a, uint64_t b) {
  return a > b ? a - b : 0;
}

// a - b field by field, for the counters of one interval.
ProcessCounters Delta(const ProcessCounters& a, const ProcessCounters& b) {
  return {Minus(a.cpu_ns, b.cpu_ns),
          Minus(a.offcpu_ns, b.offcpu_ns),
          Minus(a.sched_count, b.sched_count),
          Minus(a.reds, b.reds),
          Minus(a.msgs_in, b.msgs_in),
          Minus(a.msgs_received, b.msgs_received),
          Minus(a.msgs_out, b.msgs_out),
          Minus(a.words_out, b.words_out),
          Minus(a.gc_minor, b.gc_minor),
          Minus(a.gc_major, b.gc_major),
          Minus(a.gc_ns, b.gc_ns),
          Minus(a.heap_grows, b.heap_grows)};
}

// Counters never go backwards between reads: a run in progress is estimated at one read and
// may be accounted a little later by the programs (docs/top.md).
ProcessCounters Monotonic(const ProcessCounters& now, const ProcessCounters& before) {
  ProcessCounters m = now;
  m.cpu_ns = std::max(now.cpu_ns, before.cpu_ns);
  m.offcpu_ns = std::max(now.offcpu_ns, before.offcpu_ns);
  return m;
}

PortCounters Delta(const PortCounters& a, const PortCounters& b) {
  return {Minus(a.bytes_out, b.bytes_out), Minus(a.outputs, b.outputs),
          Minus(a.commands, b.commands), Minus(a.controls, b.controls)};
}

SchedulerCounters Delta(const SchedulerCounters& a, const SchedulerCounters& b) {
  return {Minus(a.busy_ns, b.busy_ns),
          Minus(a.idle_ns, b.idle_ns),
          Minus(a.offcpu_ns, b.offcpu_ns),
          Minus(a.idle_offcpu_ns, b.idle_offcpu_ns),
          Minus(a.runs, b.runs),
          Minus(a.preempted, b.preempted),
          Minus(a.blocked, b.blocked)};
}

struct ThreadName {
  std::string name;
  SchedulerKind kind = SchedulerKind::kOther;
  int index = 0;
};

// OTP 24-25: "1_scheduler", "1_dirty_cpu_sch", "10_dirty_io_sch" (comm is cut at 15
// characters); OTP 26 on: "erts_sched_1", "erts_dcpus_1", "erts_dios_10".
ThreadName ClassifyThread(const std::string& comm) {
  ThreadName t{comm};
  std::string number, rest;
  constexpr std::string_view kErtsPrefix = "erts_";
  if (comm.rfind(kErtsPrefix, 0) == 0) {
    const size_t underscore = comm.rfind('_');
    rest = comm.substr(kErtsPrefix.size(), underscore - kErtsPrefix.size());
    number = comm.substr(underscore + 1);
  } else {
    const size_t underscore = comm.find('_');
    if (underscore == std::string::npos) return t;
    number = comm.substr(0, underscore);
    rest = comm.substr(underscore + 1);
  }
  if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos) return t;
  if (rest == "scheduler" || rest == "sched") {
    t.kind = SchedulerKind::kNormal;
  } else if (rest.rfind("dirty_cpu", 0) == 0 || rest == "dcpus") {
    t.kind = SchedulerKind::kDirtyCpu;
  } else if (rest.rfind("dirty_io", 0) == 0 || rest == "dios") {
    t.kind = SchedulerKind::kDirtyIo;
  } else {
    return t;
  }
  t.index = std::atoi(number.c_str());
  return t;
}

std::string ReadComm(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// The BEAM's scheduler threads (normal and dirty), by tid.
std::unordered_map<pid_t, ThreadName> SchedulerThreads(pid_t pid) {
  std::unordered_map<pid_t, ThreadName> threads;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return threads;
  while (dirent* entry = readdir(d)) {
    char* end = nullptr;
    const long tid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || tid <= 0) continue;
    ThreadName t = ClassifyThread(ReadComm(pid, static_cast<pid_t>(tid)));
    if (t.kind != SchedulerKind::kOther) threads[static_cast<pid_t>(tid)] = std::move(t);
  }
  closedir(d);
  return threads;
}

}  // namespace

StatusOr<uint32_t> ParseTopProbeGroups(std::string_view list) {
  uint32_t groups = 0;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    const std::string_view word = list.substr(start, end - start);
    if (word == "all") {
      groups |= kTopAllGroups;
    } else {
      bool known = false;
      for (const auto& g : kGroupNames) {
        if (word == g.name) {
          groups |= g.group;
          known = true;
        }
      }
      if (!known) {
        return InvalidArgument("unknown probe group '", word,
                               "' (groups: sched, offcpu, messages, gc, ports, all)");
      }
    }
    start = end + 1;
  }
  if (groups & kTopOffCpu) groups |= kTopSched;  // off-CPU time is measured during runs
  return groups;
}

std::string TopProbeGroupNames(uint32_t groups) {
  std::string names;
  for (const auto& g : kGroupNames) {
    if (!(groups & g.group)) continue;
    if (!names.empty()) names += ",";
    names += g.name;
  }
  return names;
}

const sketch::IndexMapping& GcPauseMapping() {
  static const sketch::IndexMapping mapping =
      *sketch::IndexMapping::FromProto(std::exp2(1.0 / 8), 0, sketch::Interpolation::kNone);
  return mapping;
}

std::optional<uint64_t> GcPauseQuantile(const ProcessStats& p, double q) {
  if (p.gc_pauses.empty()) return std::nullopt;
  auto v = p.gc_pauses.quantile(q);
  if (!v.ok()) return std::nullopt;
  return static_cast<uint64_t>(std::min(*v, static_cast<double>(p.gc_max_ns)));
}

std::string_view QueueLengthSourceName(QueueLengthSource source) {
  switch (source) {
    case QueueLengthSource::kSenders:
      return "senders";
    case QueueLengthSource::kReceiverSignals:
      return "receiver_signals";
    case QueueLengthSource::kNone:
      return "none";
  }
  return "none";
}

std::string_view SchedulerKindName(SchedulerKind kind) {
  switch (kind) {
    case SchedulerKind::kNormal:
      return "normal";
    case SchedulerKind::kDirtyCpu:
      return "dirty_cpu";
    case SchedulerKind::kDirtyIo:
      return "dirty_io";
    case SchedulerKind::kOther:
      return "other";
  }
  return "other";
}

StatusOr<std::unique_ptr<Top>> Top::Start(const beam::BeamProcess& beam,
                                          const TopOptions& options) {
  if (options.groups == 0 || (options.groups & ~uint32_t{kTopAllGroups})) {
    return InvalidArgument("no valid probe group selected");
  }
  for (uint32_t limit :
       {options.max_procs, options.max_gc_procs, options.max_ports, options.max_threads}) {
    if (limit == 0 || limit > (1u << 20)) return InvalidArgument("map sizes must be 1..1048576");
  }
  std::unique_ptr<Top> top(new Top());
  top->beam_ = beam;
  top->options_ = options;
  RETURN_IF_ERROR(top->LoadAndAttach());
  return top;
}

Top::~Top() {
  Detach();
  top_bpf__destroy(skel_);
}

void Top::Detach() {
  links_.DetachAll();
  for (bpf_link* link : other_links_) bpf_link__destroy(link);
  other_links_.clear();
}

Status Top::LoadAndAttach() {
  skel_ = top_bpf__open();
  if (!skel_) return Internal("opening the top BPF object: ", std::strerror(errno));
  skel_->rodata->target_tgid = static_cast<uint32_t>(beam_.pid);
  if (options_.groups & kTopMessages) {
    queue_source_ =
        beam_.mailbox_probe ? QueueLengthSource::kSenders : QueueLengthSource::kReceiverSignals;
  }
  skel_->rodata->sender_queue_len = queue_source_ == QueueLengthSource::kSenders;
  // How the BEAM's pid terms hold number and serial (bpf/top.h, "Keys").
  const PidLayoutChoice layout = ChoosePidLayout(beam_);
  pid_layout_source_ = layout.source;
  auto& l = skel_->rodata->pid_layout;
  l.data_bits = layout.layout.data_bits;
  l.number_bits = layout.layout.number_bits;
  l.pix_mask = layout.layout.pix_mask;
  l.pix_cl_mask = layout.layout.pix_cl_mask;
  l.pix_cli_mask = layout.layout.pix_cli_mask;
  l.pix_cl_shift = layout.layout.pix_cl_shift;
  l.pix_cli_shift = layout.layout.pix_cli_shift;
  bpf_map__set_max_entries(skel_->maps.procs, options_.max_procs);
  bpf_map__set_max_entries(skel_->maps.gc_hists, options_.max_gc_procs);
  bpf_map__set_max_entries(skel_->maps.ports, options_.max_ports);
  bpf_map__set_max_entries(skel_->maps.threads, options_.max_threads);
  bpf_program__set_autoload(skel_->progs.orion_top_switch, (options_.groups & kTopOffCpu) != 0);
  if (int err = top_bpf__load(skel_)) {
    return Internal("loading the top BPF programs: ", std::strerror(-err),
                    " (run with -v for the verifier's log)");
  }

  struct Attachment {
    uint32_t group;
    bpf_program* prog;
    const char* probe;
    uint64_t cookie;
  };
  // Queue lengths: from the senders (patch 0011), else from the receiver's signal handling.
  const Attachment queue_probe =
      queue_source_ == QueueLengthSource::kSenders
          ? Attachment{kTopMessages, skel_->progs.orion_top_mailbox, "orion__mailbox", 0}
          : Attachment{kTopMessages, skel_->progs.orion_top_queued, "message__queued", 0};
  const Attachment attachments[] = {
      {kTopSched, skel_->progs.orion_top_spawn, "process__spawn", 0},
      {kTopSched, skel_->progs.orion_top_exit, "process__exit", 0},
      {kTopMessages, skel_->progs.orion_top_send, "message__send", 2},  // cookie: size's arg
      {kTopMessages, skel_->progs.orion_top_send, "message__send__remote", 3},
      queue_probe,
      {kTopMessages, skel_->progs.orion_top_receive, "message__receive", 0},
      {kTopGc, skel_->progs.orion_top_gc_start, "gc_minor__start", TOP_GC_MINOR},
      {kTopGc, skel_->progs.orion_top_gc_start, "gc_major__start", TOP_GC_MAJOR},
      {kTopGc, skel_->progs.orion_top_gc_end, "gc_minor__end", TOP_GC_MINOR},
      {kTopGc, skel_->progs.orion_top_gc_end, "gc_major__end", TOP_GC_MAJOR},
      {kTopGc, skel_->progs.orion_top_heap_grow, "process__heap_grow", 0},
      {kTopPorts, skel_->progs.orion_top_port_command, "port__command", 0},
      {kTopPorts, skel_->progs.orion_top_output, "driver__output", 0},
      {kTopPorts, skel_->progs.orion_top_output, "driver__outputv", 0},
  };
  start_ns_ = last_read_ns_ = MonotonicNs();
  for (const auto& a : attachments) {
    if (!(options_.groups & a.group)) continue;
    RETURN_IF_ERROR(links_.Attach(a.prog, beam_.pid, beam_.attach_path, a.probe, a.cookie)
                        .WithContext("pid " + std::to_string(beam_.pid)));
  }
  if (options_.groups & kTopSched) {
    for (const bool ret : {false, true}) {
      LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret, .func_name = kScheduleFunction);
      bpf_program* prog = ret ? skel_->progs.orion_top_sched_in : skel_->progs.orion_top_sched_out;
      bpf_link* link =
          bpf_program__attach_uprobe_opts(prog, beam_.pid, beam_.attach_path.c_str(), 0, &opts);
      if (!link) {
        const int err = errno;
        if (err == ENOENT || err == ESRCH) {
          return FailedPrecondition(
              "the BEAM of pid ", beam_.pid, " (", beam_.exe, ") has no symbol ", kScheduleFunction,
              " (a stripped binary?): per-process CPU time needs it; run without the sched group "
              "(--probes messages,gc,ports) or use an unstripped USDT build");
        }
        return Internal("attaching to ", kScheduleFunction, " in ", beam_.exe, ": ",
                        std::strerror(err));
      }
      other_links_.push_back(link);
    }
  }
  if (options_.groups & kTopOffCpu) {
    bpf_link* link = bpf_program__attach_trace(skel_->progs.orion_top_switch);
    if (!link) {
      return Internal("attaching to the kernel's sched_switch tracepoint (tp_btf) failed: ",
                      std::strerror(errno));
    }
    other_links_.push_back(link);
  }
  spdlog::debug("top attached to pid {} ({}): {} links, groups {}, {} MiB of BPF maps", beam_.pid,
                beam::FlavorName(beam_.flavor), links_.size() + other_links_.size(),
                TopProbeGroupNames(options_.groups), MapMemoryBytes() >> 20);
  return OkStatus();
}

StatusOr<TopSnapshot> Top::Read() {
  TopSnapshot snap;
  // Close the queue high-water window: the programs now write the other slot.
  const uint32_t closed_epoch = skel_->bss->epoch;
  __atomic_store_n(&skel_->bss->epoch, closed_epoch + 1, __ATOMIC_SEQ_CST);

  uint64_t counters[TOP_COUNTER_COUNT] = {};
  for (uint32_t i = 0; i < TOP_COUNTER_COUNT; ++i) {
    ASSIGN_OR_RETURN(counters[i], SumPercpuU64(bpf_map__fd(skel_->maps.counters), i));
  }
  snap.events = counters[TOP_EVENTS];
  snap.lost.read_errors = counters[TOP_READ_ERRORS];
  snap.lost.gc_unpaired = counters[TOP_GC_UNPAIRED];
  snap.lost.threads_untracked = counters[TOP_THREADS_FULL];

  // Processes first, then threads: a run that ends in between is accounted at the next read,
  // never twice.
  std::vector<std::pair<uint64_t, top_proc>> procs;
  RETURN_IF_ERROR(ReadMap(bpf_map__fd(skel_->maps.procs), &procs));
  std::vector<std::pair<uint64_t, top_gc_hist>> hists;
  RETURN_IF_ERROR(ReadMap(bpf_map__fd(skel_->maps.gc_hists), &hists));
  std::vector<std::pair<uint32_t, top_thread>> threads;
  RETURN_IF_ERROR(ReadMap(bpf_map__fd(skel_->maps.threads), &threads));
  std::vector<std::pair<uint64_t, top_port>> ports;
  RETURN_IF_ERROR(ReadMap(bpf_map__fd(skel_->maps.ports), &ports));
  const uint64_t now = MonotonicNs();
  snap.elapsed_ns = now - start_ns_;
  snap.interval_ns = now - last_read_ns_;
  last_read_ns_ = now;

  // Runs in progress: their time so far, per process and per thread.
  struct InProgress {
    uint64_t held = 0, offcpu = 0;
  };
  std::unordered_map<uint64_t, InProgress> running;
  std::unordered_map<pid_t, InProgress> thread_running;
  for (const auto& [tid, t] : threads) {
    if (!t.running || t.run_start_ns == 0 || t.run_start_ns > now) continue;
    InProgress p;
    p.held = now - t.run_start_ns;
    p.offcpu = t.run_offcpu_ns +
               (t.offcpu_since_ns && t.offcpu_since_ns < now ? now - t.offcpu_since_ns : 0);
    p.offcpu = std::min(p.offcpu, p.held);
    running[t.running_key].held += p.held;
    running[t.running_key].offcpu += p.offcpu;
    thread_running[static_cast<pid_t>(tid)] = p;
  }

  std::unordered_map<uint64_t, const top_gc_hist*> hist_of;
  for (const auto& [key, h] : hists) hist_of[key] = &h;

  std::unordered_map<uint64_t, ProcessHistory> next_history;
  std::vector<uint64_t> exited_keys;
  snap.processes.reserve(procs.size());
  for (const auto& [key, p] : procs) {
    ProcessStats s;
    s.pid = PidString(key);
    s.initial_call = FixedString(p.initial, sizeof(p.initial));
    ProcessCounters c;
    c.cpu_ns = p.cpu_ns;
    c.offcpu_ns = p.offcpu_ns;
    if (auto r = running.find(key); r != running.end()) {
      c.cpu_ns += r->second.held;
      c.offcpu_ns += r->second.offcpu;
    }
    c.sched_count = p.sched_count;
    c.reds = p.reds;
    c.msgs_in = p.msgs_in;
    c.msgs_received = p.msgs_received;
    c.msgs_out = p.msgs_out;
    c.words_out = p.words_out;
    c.gc_minor = p.gc_minor;
    c.gc_major = p.gc_major;
    c.gc_ns = p.gc_ns;
    c.heap_grows = p.heap_grows;

    const auto before = process_history_.find(key);
    const ProcessHistory* prev = before != process_history_.end() ? &before->second : nullptr;
    // Counts lower than last time: the entry was evicted and recreated; it starts over.
    const bool restarted =
        prev && (c.sched_count < prev->total.sched_count || c.msgs_in < prev->total.msgs_in ||
                 c.gc_minor < prev->total.gc_minor);
    s.total = prev && !restarted ? Monotonic(c, prev->total) : c;
    s.interval = prev && !restarted ? Delta(s.total, prev->total) : s.total;

    s.queue_len = p.queue_len;
    const uint32_t slot = closed_epoch & 1;
    const uint64_t window_max = p.qmax_epoch[slot] == closed_epoch ? p.qmax[slot] : 0;
    // The window also holds the length it started with.
    s.queue_len_max = std::max({window_max, s.queue_len, prev ? prev->queue_len : uint64_t{0}});
    s.heap_words = p.heap_words;
    s.gc_max_ns = p.gc_max_ns;
    if (auto h = hist_of.find(key); h != hist_of.end()) {
      for (int i = 0; i < TOP_GC_BUCKETS; ++i) {
        s.gc_pauses.add_bucket_counts(TOP_GC_FIRST_INDEX + i, h->second->buckets[i]);
      }
      if (!s.gc_pauses.empty()) {
        s.gc_pauses.set_summary(static_cast<double>(p.gc_ns),
                                std::min(s.gc_pauses.min(), static_cast<double>(p.gc_max_ns)),
                                static_cast<double>(p.gc_max_ns));
      }
    }
    s.exited = (p.flags & TOP_PROC_EXITED) != 0;
    if (s.exited) {
      exited_keys.push_back(key);
    } else {
      next_history[key] = {s.total, s.queue_len};
    }
    snap.processes.push_back(std::move(s));
  }
  process_history_ = std::move(next_history);
  const uint64_t procs_deleted_before = procs_deleted_;
  const uint64_t gc_hists_deleted_before = gc_hists_deleted_;
  for (uint64_t key : exited_keys) {
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.procs), &key) == 0) ++procs_deleted_;
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.gc_hists), &key) == 0) ++gc_hists_deleted_;
  }

  std::unordered_map<uint64_t, PortCounters> next_ports;
  for (const auto& [key, p] : ports) {
    PortStats s;
    s.port = "#Port<0." + std::to_string(key) + ">";
    s.name = FixedString(p.name, sizeof(p.name));
    s.total = {p.bytes_out, p.outputs, p.commands, p.controls};
    const auto before = port_history_.find(key);
    s.interval = before != port_history_.end() ? Delta(s.total, before->second) : s.total;
    next_ports[key] = s.total;
    snap.ports.push_back(std::move(s));
  }
  port_history_ = std::move(next_ports);

  // Scheduler threads: every normal and dirty scheduler of the BEAM, busy or not, and any other
  // thread that ran processes.
  std::unordered_map<pid_t, ThreadName> names = SchedulerThreads(beam_.pid);
  std::unordered_map<pid_t, const top_thread*> thread_of;
  for (const auto& [tid, t] : threads) {
    thread_of[static_cast<pid_t>(tid)] = &t;
    if (!names.count(static_cast<pid_t>(tid))) {
      names[static_cast<pid_t>(tid)] = ClassifyThread(ReadComm(beam_.pid, static_cast<pid_t>(tid)));
    }
  }
  std::unordered_map<pid_t, SchedulerCounters> next_schedulers;
  for (const auto& [tid, name] : names) {
    SchedulerStats s;
    s.tid = tid;
    s.thread_name = name.name;
    s.kind = name.kind;
    s.index = name.index;
    SchedulerCounters c;
    if (auto t = thread_of.find(tid); t != thread_of.end()) {
      c.busy_ns = t->second->busy_ns;
      c.offcpu_ns = t->second->offcpu_ns;
      c.runs = t->second->runs;
      c.preempted = t->second->preempted;
      c.blocked = t->second->blocked;
      if (auto r = thread_running.find(tid); r != thread_running.end()) {
        c.busy_ns += r->second.held;
        c.offcpu_ns += Minus(r->second.offcpu, t->second->run_offcpu_ns);
      }
      const uint64_t since = t->second->idle_offcpu_since_ns;
      c.idle_offcpu_ns = t->second->idle_offcpu_ns + (since && since < now ? now - since : 0);
    }
    const auto before = scheduler_history_.find(tid);
    if (before != scheduler_history_.end()) {
      c.busy_ns = std::max(c.busy_ns, before->second.busy_ns);
      c.offcpu_ns = std::max(c.offcpu_ns, before->second.offcpu_ns);
      c.idle_offcpu_ns = std::max(c.idle_offcpu_ns, before->second.idle_offcpu_ns);
    }
    c.busy_ns = std::min(c.busy_ns, snap.elapsed_ns);
    c.idle_ns = snap.elapsed_ns - c.busy_ns;
    c.idle_offcpu_ns = std::min(c.idle_offcpu_ns, c.idle_ns);
    s.total = c;
    if (before != scheduler_history_.end()) {
      s.interval = Delta(c, before->second);
      s.interval.idle_ns = Minus(snap.interval_ns, s.interval.busy_ns);
      s.interval.idle_offcpu_ns = std::min(s.interval.idle_offcpu_ns, s.interval.idle_ns);
    } else {
      s.interval = c;
    }
    next_schedulers[tid] = c;
    snap.schedulers.push_back(std::move(s));
  }
  scheduler_history_ = std::move(next_schedulers);
  std::sort(snap.schedulers.begin(), snap.schedulers.end(),
            [](const SchedulerStats& a, const SchedulerStats& b) {
              if (a.kind != b.kind) return a.kind < b.kind;
              if (a.index != b.index) return a.index < b.index;
              return a.tid < b.tid;
            });

  // Entries the programs created, minus those userspace deleted and those still there (read
  // before this read's deletions): the rest the LRU maps evicted.
  snap.lost.procs_evicted =
      Minus(counters[TOP_PROCS_INSERTED], procs_deleted_before + procs.size());
  snap.lost.ports_evicted = Minus(counters[TOP_PORTS_INSERTED], ports.size());
  snap.lost.gc_hists_evicted =
      Minus(counters[TOP_GC_HISTS_INSERTED], gc_hists_deleted_before + hists.size());
  bpf_program* progs[] = {skel_->progs.orion_top_sched_in,  skel_->progs.orion_top_sched_out,
                          skel_->progs.orion_top_spawn,     skel_->progs.orion_top_exit,
                          skel_->progs.orion_top_send,      skel_->progs.orion_top_queued,
                          skel_->progs.orion_top_mailbox,   skel_->progs.orion_top_receive,
                          skel_->progs.orion_top_gc_start,  skel_->progs.orion_top_gc_end,
                          skel_->progs.orion_top_heap_grow, skel_->progs.orion_top_port_command,
                          skel_->progs.orion_top_output,    skel_->progs.orion_top_switch};
  for (bpf_program* prog : progs) {
    if (bpf_program__fd(prog) < 0) continue;
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
      snap.lost.recursion_misses += info.recursion_misses;
    }
  }
  return snap;
}

uint64_t Top::MapMemoryBytes() const {
  return ObjectMapMemoryBytes(skel_->obj);
}

}  // namespace orion::probes
