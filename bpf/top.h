/* The contract between bpf/top.bpf.c and userspace/probes/top.cc.
 *
 * top: the BEAM seen from the kernel, like etop/observer_cli/msacc but from outside the node,
 * through the runtime's USDT probes (they fire in the jit and emu flavors alike) and the
 * kernel's sched_switch tracepoint. Everything is aggregated in bounded maps; userspace reads
 * them once per refresh (docs/top.md).
 *
 * Probe groups (TOP_GROUP_*, chosen by the loader; each one's overhead is in docs/top.md):
 *   sched     uprobe + uretprobe on erts_schedule() (the scheduler loop of both flavors: its
 *             entry ends the thread's current run, and its third argument is the reductions
 *             that run used; its return value is the process that runs next), process__spawn,
 *             process__exit: per-process time on a scheduler, runs and reductions,
 *             per-scheduler-thread busy time, initial calls. The JIT flavor fires no
 *             process__scheduled probe from its normal schedulers (only the emu flavor and dirty
 *             schedulers do), hence the uprobes on the function both flavors share.
 *   offcpu    tp_btf/sched_switch: time a scheduler thread holding an Erlang process spent off
 *             the CPU (preempted by the OS or blocked in the kernel); needs `sched`
 *   messages  message__send(+__remote), orion__mailbox, message__receive: messages out and
 *             in, message-queue length and its high-water mark. orion__mailbox (patch 0011)
 *             is fired by the sender at each send, with integer arguments: the receiver's pid
 *             term and the messages in all its queues. On a BEAM without it, message__queued
 *             instead, which the receiver fires only when it handles its signals (a process
 *             that never looks at its queue fires none); `sender_queue_len` says which.
 *   gc        gc_minor/major__start/end, process__heap_grow: GC count, pauses, heap growth
 *   ports     port__command, driver__output(v): commands and bytes handed to each port
 *
 * Keys. A local Erlang process "<0.N.S>" is keyed by top_proc_key(N, S). The string probes give
 * N and S as printed; the uretprobe (the process's id term, Process.common.id, at offset 0 of
 * struct process) and orion__mailbox (the receiver's term) give pid terms, decoded by
 * top_pid_term_key() with the layout in the programs' read-only `pid_layout`. How a release's
 * terms hold N and S differs (OTP 24-25: the data as is in the low 32 bits; OTP 26 on: the
 * process table's scrambled form of it, erts_ptab_make_id, which depends on the table's size),
 * so the layout is data, not code: the patched emulator states its own in its pairing table
 * (erl_orion_pair.h's ErtsOrionPidLayout, table version 5), which the loader copies here; a
 * BEAM without the table gets OTP 24-25's (TOP_PID_LAYOUT_OTP24). A port "#Port<0.N>" is keyed
 * by N. Userspace prints the strings back from the keys. One loaded object
 * serves one BEAM (the uprobes are attached to its pid; sched_switch filters on target_tgid).
 * Processes, ports and GC histograms live in LRU maps sized by the loader: the least recently
 * active are evicted when full (counted by userspace: inserted - deleted - live).
 *
 * Queue high-water mark "since the last refresh": every process keeps two (max, epoch) slots;
 * events write slot (epoch & 1) of the global `epoch`, which userspace increments at each
 * refresh and then reads the other slot, the one of the window that just closed.
 *
 * GC pauses: exact count/sum/max per process in `procs`, and a coarse histogram per process
 * in `gc_hists`: bucket = (sketch/bucket_index.h index) >> TOP_GC_SCALE_SHIFT, which is exactly
 * floor(log2(ns) * 8): the base-2 exponential mapping at scale 3 (gamma = 2^(1/8), relative
 * accuracy 4.3 %), a DDSketch with 224 u32 buckets (896 bytes) instead of 2816 u64 slots.
 */
#ifndef ORION_BPF_TOP_H
#define ORION_BPF_TOP_H

#include "sketch/bucket_index.h"

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TOP_PID_LEN 32  /* bytes of an Erlang pid or port string read ("<0.123.0>") */
#define TOP_MFA_LEN 96  /* bytes of an MFA read (the initial call) */
#define TOP_NAME_LEN 48 /* bytes of a port name read ("tcp_inet", a spawn command line) */

/* Probe groups: bit i set = the group's probes are attached. */
#define TOP_GROUP_SCHED (1u << 0)
#define TOP_GROUP_OFFCPU (1u << 1)
#define TOP_GROUP_MESSAGES (1u << 2)
#define TOP_GROUP_GC (1u << 3)
#define TOP_GROUP_PORTS (1u << 4)
#define TOP_GROUP_ALL 0x1fu

/* A local pid term: its data above a 4-bit tag. */
#define TOP_TAG_MASK 0xfu
#define TOP_TAG_PID 0x3u

/* The key of local process <0.number.serial>. */
static inline __u64 top_proc_key(__u64 number, __u64 serial) {
  return serial << 32 | number;
}

/* How the BEAM's pid terms hold a pid's number and serial:
 *   data   = (term >> 4) & ((1 << data_bits) - 1)             (above the 4-bit pid tag)
 *   data   = (data & ~pix_mask) | ((data >> pix_cl_shift) & pix_cl_mask)
 *            | ((data & pix_cli_mask) << pix_cli_shift)       (the process table's
 *                                                             erts_ptab_pixdata2data)
 *   number = data & ((1 << number_bits) - 1), serial = data >> number_bits
 * OTP 24-25: data_bits 28, number_bits 15, the masks 0 (the term holds the data as is).
 * OTP 26+: data_bits 60, number_bits 28, the masks and shifts of the emulator's process table.
 * Bounds: 0 < number_bits <= 32, number_bits <= data_bits <= 60, data_bits - number_bits <= 32,
 * shifts below 64. */
struct top_pid_layout {
  __u32 data_bits;
  __u32 number_bits;
  __u64 pix_mask;
  __u64 pix_cl_mask;
  __u64 pix_cli_mask;
  __u32 pix_cl_shift;
  __u32 pix_cli_shift;
};

/* OTP 24-25's layout (the data as is in the low 32 bits: a 15-bit number, a 13-bit serial). */
#define TOP_PID_LAYOUT_OTP24 {28, 15, 0, 0, 0, 0, 0}

/* The key of the local process whose pid term is `term` (its tag already checked). */
static inline __u64 top_pid_term_key(const struct top_pid_layout* l, __u64 term) {
  __u64 data = (term >> 4) & ((1ull << (l->data_bits & 63)) - 1);
  data = (data & ~l->pix_mask) | ((data >> (l->pix_cl_shift & 63)) & l->pix_cl_mask) |
         ((data & l->pix_cli_mask) << (l->pix_cli_shift & 63));
  return top_proc_key(data & ((1ull << (l->number_bits & 63)) - 1),
                      (data >> (l->number_bits & 63)) & 0xffffffffull);
}

/* usdt cookies of the GC programs */
#define TOP_GC_MINOR 0
#define TOP_GC_MAJOR 1

/* The GC pause histogram: scale-3 buckets floor(8 * log2 ns) from 2^7 ns (128 ns) to 2^35 ns
 * (34 s); shorter pauses count in the first bucket, longer ones in the last. */
#define TOP_GC_SCALE_SHIFT 3 /* kernel index (scale 6) >> 3 = scale-3 index */
#define TOP_GC_FIRST_INDEX (7 * 8)
#define TOP_GC_BUCKETS (28 * 8)

/* procs value flags */
#define TOP_PROC_EXITED (1u << 0) /* process__exit fired: userspace reports it once, deletes */

struct top_proc {
  char initial[TOP_MFA_LEN]; /* process__spawn's MFA (processes spawned while attached) */
  __u64 cpu_ns;        /* time holding a scheduler: erts_schedule() returned it -> next call */
  __u64 offcpu_ns;     /* the part of cpu_ns its scheduler thread was off the CPU */
  __u64 sched_count;   /* times scheduled in */
  __u64 reds;          /* reductions: erts_schedule()'s `calls` at the end of each run */
  __u64 msgs_in;       /* messages queued to it (message__queued) */
  __u64 msgs_received; /* messages it took out of its queue (message__receive) */
  __u64 msgs_out;      /* messages it sent (message__send, message__send__remote) */
  __u64 words_out;     /* size of the messages it sent, in words */
  __u64 queue_len;     /* its queue length at the last queued/receive event */
  __u64 qmax[2];       /* queue high-water mark of window qmax_epoch[i] */
  __u32 qmax_epoch[2];
  __u64 gc_minor;    /* minor collections ended */
  __u64 gc_major;    /* major (fullsweep) collections ended */
  __u64 gc_ns;       /* sum of GC pauses */
  __u64 gc_max_ns;   /* longest GC pause */
  __u64 gc_start_ns; /* the collection in progress started (0: none) */
  __u64 heap_grows;  /* process__heap_grow events */
  __u64 heap_words;  /* heap size after its last growth, in words */
  __u32 flags;       /* TOP_PROC_* */
  __u32 pad;
};

struct top_gc_hist {
  __u32 buckets[TOP_GC_BUCKETS]; /* bucket i: scale-3 index TOP_GC_FIRST_INDEX + i */
};

struct top_port {
  char name[TOP_NAME_LEN];
  __u64 bytes_out; /* bytes handed to the driver (driver__output, driver__outputv) */
  __u64 outputs;   /* driver output calls */
  __u64 commands;  /* port__command "command" events (port_command/2,3, Port ! {P, {command, D}}) */
  __u64 controls;  /* port__command "close" and "connect" events */
};

/* One OS thread of the BEAM that ran Erlang processes (a scheduler, normal or dirty). */
struct top_thread {
  __u64 running_key;     /* the process it holds, when `running` */
  __u64 running;         /* 1: holds a process */
  __u64 run_start_ns;    /* when it was scheduled in */
  __u64 run_offcpu_ns;   /* off-CPU time during the current run */
  __u64 offcpu_since_ns; /* switched out by the OS while holding a process (0: on CPU) */
  __u64 busy_ns;         /* time holding processes, finished runs */
  __u64 offcpu_ns;       /* off-CPU time while holding a process, finished intervals */
  __u64 runs;            /* processes scheduled in */
  __u64 preempted;       /* switched out while holding a process: preempted by the OS */
  __u64 blocked;         /* ... or blocked/sleeping in the kernel */
  __u64 idle_offcpu_since_ns; /* switched out by the OS while holding no process (0: on CPU) */
  __u64 idle_offcpu_ns;       /* off-CPU time while holding no process (asleep waiting for
                               * work, or preempted in the scheduler loop), finished intervals */
};

/* Global counters: index of the `counters` per-CPU array. */
enum top_counter {
  TOP_EVENTS = 0,        /* probe hits seen by the programs (not sched_switch) */
  TOP_PROCS_INSERTED,    /* procs entries created */
  TOP_PORTS_INSERTED,    /* ports entries created */
  TOP_GC_HISTS_INSERTED, /* gc_hists entries created */
  TOP_READ_ERRORS,       /* probe arguments that could not be read */
  TOP_GC_UNPAIRED,       /* gc end without a start (attached mid-collection, or evicted) */
  TOP_THREADS_FULL,      /* scheduler threads not tracked: the threads map is full */
  TOP_COUNTER_COUNT,
};

#endif /* ORION_BPF_TOP_H */
