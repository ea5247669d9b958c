// A running `top`: bpf/top.bpf.c loaded and attached to the runtime probes of one BEAM (jit or
// emu flavor) and to the kernel's sched_switch; Read() turns its maps into a TopSnapshot of
// processes, ports and scheduler threads, cumulative since Start and per interval.
//
//   ASSIGN_OR_RETURN(auto top, Top::Start(beam, TopOptions{}));
//   ... every interval:
//   ASSIGN_OR_RETURN(TopSnapshot snap, top->Read());
//   for (const ProcessStats& p : snap.processes) ... p.interval.cpu_ns / snap.interval_ns ...
//
// Destroying the Top detaches everything (the links are fd-owned, so does exit or a crash).
// What each number means, and its accuracy, is in docs/top.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "sketch/ddsketch.h"
#include "userspace/beam/beam_process.h"
#include "userspace/beam/pid_layout.h"
#include "userspace/probes/usdt_links.h"

struct top_bpf;
struct bpf_link;

namespace orion::probes {

// Probe groups (bpf/top.h): which probes are attached, so that each one's cost can be chosen.
enum TopProbeGroup : uint32_t {
  kTopSched = 1u << 0,     // process scheduled/unscheduled/spawn/exit: CPU, runs, schedulers
  kTopOffCpu = 1u << 1,    // sched_switch: scheduler threads off the CPU while holding a process
  kTopMessages = 1u << 2,  // message send/queued/receive: messages, queue length
  kTopGc = 1u << 3,        // GC start/end, heap growth
  kTopPorts = 1u << 4,     // port commands, driver output bytes
  kTopAllGroups = 0x1f,
};

// "sched,offcpu,messages,gc,ports" (or "all") -> a mask; InvalidArgument names the bad word.
StatusOr<uint32_t> ParseTopProbeGroups(std::string_view list);
// The mask as "sched,messages,..."
std::string TopProbeGroupNames(uint32_t groups);

struct TopOptions {
  uint32_t groups = kTopAllGroups;
  uint32_t max_procs = 16384;    // Erlang processes tracked at once (LRU: idle ones are evicted)
  uint32_t max_gc_procs = 4096;  // processes with a GC pause histogram (LRU)
  uint32_t max_ports = 1024;     // ports tracked at once (LRU)
  uint32_t max_threads = 1024;   // OS threads that ran Erlang processes
};

// Where the message-queue lengths come from (probe group `messages`, docs/top.md).
enum class QueueLengthSource {
  kSenders,          // orion__mailbox (patch 0011): each sender reports the receiver's length
  kReceiverSignals,  // message__queued: only when the receiver handles its signals (an
                     // unpatched BEAM: a process that never looks at its queue shows nothing)
  kNone,             // the messages group is not attached
};
// "senders (orion__mailbox)", ...: for the output.
std::string_view QueueLengthSourceName(QueueLengthSource source);

// The GC pause sketches' mapping: base-2 exponential at scale 3, gamma = 2^(1/8), relative
// accuracy 4.3 % (bpf/top.h): DataDog IndexMapping{gamma 2^(1/8), offset 0, NONE}.
const sketch::IndexMapping& GcPauseMapping();

struct ProcessCounters {
  uint64_t cpu_ns = 0;         // time holding a scheduler (from the scheduler loop's choice
                               // of the process to its next call of the scheduler loop)
  uint64_t offcpu_ns = 0;      // the part of cpu_ns its scheduler thread was off the CPU
  uint64_t sched_count = 0;    // times scheduled in
  uint64_t reds = 0;           // reductions it used (erts_schedule's count at each run's end)
  uint64_t msgs_in = 0;        // messages that arrived in its queue
  uint64_t msgs_received = 0;  // messages it took out of its queue (receive)
  uint64_t msgs_out = 0;       // messages it sent
  uint64_t words_out = 0;      // size of the messages it sent, in words
  uint64_t gc_minor = 0;       // minor collections
  uint64_t gc_major = 0;       // major (fullsweep) collections
  uint64_t gc_ns = 0;          // time in GC pauses
  uint64_t heap_grows = 0;     // heap growths
  uint64_t gc_count() const { return gc_minor + gc_major; }
};

struct ProcessStats {
  std::string pid;             // "<0.123.0>", as the BEAM prints it
  std::string initial_call;    // "mod:fun/arity" of its spawn, if spawned while attached
  ProcessCounters total;       // since Start (or since it was first seen)
  ProcessCounters interval;    // since the previous Read() (or Start)
  uint64_t queue_len = 0;      // message-queue length at its last message event
  uint64_t queue_len_max = 0;  // high-water mark since the previous Read()
  uint64_t heap_words = 0;     // heap size after its last growth (0: none seen)
  uint64_t gc_max_ns = 0;      // longest GC pause since Start, exact
  sketch::CountSketch gc_pauses{GcPauseMapping()};  // GC pauses since Start (4.3 %)
  bool exited = false;                              // it exited: this is its last report
};

// Quantile q of a process's GC pauses (since Start), capped at the exact longest pause;
// nullopt when it had none.
std::optional<uint64_t> GcPauseQuantile(const ProcessStats& p, double q);

struct PortCounters {
  uint64_t bytes_out = 0;  // bytes handed to the port's driver (payload, without framing)
  uint64_t outputs = 0;    // driver output calls
  uint64_t commands = 0;   // port commands (port_command/2,3, Port ! {Owner, {command, Data}})
  uint64_t controls = 0;   // other port operations traced by port__command: close, connect
};

struct PortStats {
  std::string port;  // "#Port<0.12>"
  std::string name;  // the driver or spawn command: "tcp_inet", "inet_gethost 4"
  PortCounters total;
  PortCounters interval;
};

enum class SchedulerKind { kNormal, kDirtyCpu, kDirtyIo, kOther };
std::string_view SchedulerKindName(SchedulerKind kind);  // "normal", "dirty_cpu", ...

struct SchedulerCounters {
  uint64_t busy_ns = 0;    // holding an Erlang process
  uint64_t idle_ns = 0;    // wall time not holding one (ports, system work, polling, sleeping)
  uint64_t offcpu_ns = 0;  // the part of busy_ns the OS had the thread off the CPU
  uint64_t idle_offcpu_ns = 0;  // the part of idle_ns it was off the CPU: asleep waiting for
                                // work, or preempted by the OS in the scheduler loop
  uint64_t runs = 0;       // processes scheduled in
  uint64_t preempted = 0;  // switched out by the OS while holding a process: preempted
  uint64_t blocked = 0;    // ... blocked or sleeping in the kernel
};

struct SchedulerStats {
  pid_t tid = 0;
  std::string thread_name;  // "1_scheduler", "1_dirty_cpu_sch", ...
  SchedulerKind kind = SchedulerKind::kOther;
  int index = 0;  // the BEAM's scheduler number (1-based), 0 if unknown
  SchedulerCounters total;
  SchedulerCounters interval;
};

// What could not be measured; all zero in a healthy run.
struct TopLost {
  uint64_t procs_evicted = 0;  // processes dropped from the full LRU map (their counts restart)
  uint64_t ports_evicted = 0;
  uint64_t gc_hists_evicted = 0;   // GC pause histograms dropped (the sketch misses pauses)
  uint64_t read_errors = 0;        // probe string arguments that could not be read
  uint64_t gc_unpaired = 0;        // GC ends without their start (no pause sample)
  uint64_t threads_untracked = 0;  // scheduler threads beyond max_threads
  uint64_t recursion_misses = 0;   // probe hits the kernel skipped (another BPF program ran)
};

struct TopSnapshot {
  uint64_t elapsed_ns = 0;                 // since Start
  uint64_t interval_ns = 0;                // since the previous Read() (or Start)
  std::vector<ProcessStats> processes;     // every process tracked, in no particular order
  std::vector<PortStats> ports;            // every port tracked
  std::vector<SchedulerStats> schedulers;  // normal, dirty CPU, dirty IO, then others; by index
  TopLost lost;
  uint64_t events = 0;  // probe hits the programs saw
};

class Top {
 public:
  // Loads and attaches the probes of `options.groups` to `beam` (any flavor with USDT probes).
  static StatusOr<std::unique_ptr<Top>> Start(const beam::BeamProcess& beam,
                                              const TopOptions& options);
  ~Top();
  Top(const Top&) = delete;
  Top& operator=(const Top&) = delete;

  // Everything since Start, and since the previous Read(): each call closes an interval
  // (queue high-water marks restart). Exited processes are reported once, then forgotten.
  StatusOr<TopSnapshot> Read();

  // Detaches from the BEAM now (Read() still works on what was measured).
  void Detach();

  // Bytes of BPF map memory this top allocated.
  uint64_t MapMemoryBytes() const;

  const beam::BeamProcess& beam() const { return beam_; }
  QueueLengthSource queue_length_source() const { return queue_source_; }
  // Where the layout top decodes pid terms with came from (userspace/beam/pid_layout.h).
  beam::PidLayoutSource pid_layout_source() const { return pid_layout_source_; }

 private:
  Top() = default;
  Status LoadAndAttach();

  struct ProcessHistory {  // what the previous Read() reported, for intervals
    ProcessCounters total;
    uint64_t queue_len = 0;
  };

  beam::BeamProcess beam_;
  TopOptions options_;
  top_bpf* skel_ = nullptr;
  QueueLengthSource queue_source_ = QueueLengthSource::kNone;
  beam::PidLayoutSource pid_layout_source_ = beam::PidLayoutSource::kAssumed;
  UsdtLinks links_;
  std::vector<bpf_link*> other_links_;  // erts_schedule uprobes, sched_switch
  uint64_t start_ns_ = 0;
  uint64_t last_read_ns_ = 0;
  uint64_t procs_deleted_ = 0;
  uint64_t gc_hists_deleted_ = 0;
  std::unordered_map<uint64_t, ProcessHistory> process_history_;
  std::unordered_map<uint64_t, PortCounters> port_history_;
  std::unordered_map<pid_t, SchedulerCounters> scheduler_history_;
};

}  // namespace orion::probes
