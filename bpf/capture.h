/* The contract between bpf/capture.bpf.c and userspace/probes/capture.cc.
 *
 * capture: latency of targeted Erlang functions, measured in the kernel from the BEAM's
 * function probes (docs/probes.md) and bucketed with sketch/bucket_index.h, so that userspace
 * folds the buckets into DDSketches with no added error. No per-event data crosses into
 * userspace: it reads the maps below once per interval.
 *
 * Identification. The probes carry strings: the Erlang pid ("<0.123.0>") and the MFA
 * ("mod:fun/2", atoms quoted the way the BEAM prints them: "'Elixir.Foo':bar/1"). BPF hashes
 * them with orion_fnv1a_step (below, the one definition userspace uses too):
 *   - module hash: the bytes before the first ':' (for a quoted module, the first ':' right
 *                  after a quote)                                  ("'Elixir.Foo'")
 *   - mf hash:     the bytes before the last '/' (only the arity follows it) ("'Elixir.Foo':bar")
 *   - mfa hash:    all bytes                                       ("'Elixir.Foo':bar/1")
 * `target_modules` holds every targeted module hash, with flags saying which kinds of
 * patterns exist for it; `targets` holds the mf and mfa hashes of narrower patterns. An entry
 * whose module is not in `target_modules` costs one lookup and returns.
 *
 * Calls. Per Erlang process, a small stack of in-flight targeted frames (`procs`), each with
 * its entry depth, start time and on-CPU clock (docs/probes.md, "Pairing"). A return at depth
 * d ends the frames entered at d (a tail-call chain), frames deeper than d died by an
 * exception; exception__catch(d) ends the frames at depths >= d as exceptions; process__exit
 * and process__hibernate (erlang:hibernate/3 discards the stack) end them all.
 *
 * Functions. Every concrete MFA that matches gets a slot (`mfa_slots`, allocated in BPF,
 * its name in `slot_names`), and per slot two histograms (wall, on-CPU), their exact
 * count/sum/min/max, and counters of calls that did not end by a return.
 */
#ifndef ORION_BPF_CAPTURE_H
#define ORION_BPF_CAPTURE_H

#include "sketch/bucket_index.h"

#ifndef __VMLINUX_H__
#include <linux/types.h> /* userspace: __u64 and friends, as the kernel defines them */
#endif

#define CAPTURE_MFA_LEN 160      /* bytes of an MFA string read; longer ones are truncated */
#define CAPTURE_PID_LEN 32       /* bytes of an Erlang pid string read */
#define CAPTURE_MAX_FRAMES 32    /* in-flight targeted frames per Erlang process */
#define CAPTURE_HIST_SLOTS ORION_BUCKET_COUNT

/* Histogram kinds, per function slot: key of `hists` and `stats` = slot * 2 + kind. */
#define CAPTURE_WALL 0
#define CAPTURE_CPU 1
#define CAPTURE_KINDS 2

/* target_modules value flags: which patterns exist for the module. */
#define TARGET_MODULE_ALL (1u << 0) /* "m:_/_": every function of the module */
#define TARGET_MODULE_MF (1u << 1)  /* some "m:f/_" pattern: look up the mf hash */
#define TARGET_MODULE_MFA (1u << 2) /* some "m:f/a" pattern: look up the mfa hash */

/* targets key kinds */
#define TARGET_KIND_MF 1
#define TARGET_KIND_MFA 2

struct target_key {
  __u64 hash;
  __u32 kind; /* TARGET_KIND_* */
  __u32 pad;
};

/* procs key: one Erlang process of one BEAM. */
struct proc_key {
  __u32 tgid;     /* the BEAM's OS pid */
  __u32 pad;
  __u64 pid_hash; /* orion_fnv1a of the Erlang pid string */
};

struct frame {
  __u64 start_ns;     /* bpf_ktime_get_ns() at entry */
  __u64 cpu_start_ns; /* the process's on-CPU clock at entry */
  __s32 depth;        /* the probe's depth argument */
  __u32 slot;         /* the function's slot */
};

struct proc_state {
  __u64 sched_in_ns; /* when the process was last scheduled in (0: not running) */
  __u64 oncpu_ns;    /* on-CPU time accumulated before sched_in_ns */
  __u32 nframes;
  __u32 pad;
  struct frame frames[CAPTURE_MAX_FRAMES];
};

struct hist_stats {
  __u64 count;
  __u64 sum_ns;
  __u64 min_ns; /* meaningful when count > 0 */
  __u64 max_ns;
};

/* One latency distribution of one function on one CPU: exact stats and the bucket counts
 * (slot i = sketch index i, see sketch/bucket_index.h). 22.5 KB: per-CPU map values may
 * be up to 32 KB. */
struct hist {
  struct hist_stats stats;
  __u64 slots[CAPTURE_HIST_SLOTS];
};

/* Per function slot: how calls ended other than by a return. */
struct slot_counters {
  __u64 exceptions; /* unwound by an exception (exception__catch, or a shallower return) */
  __u64 tail_calls; /* re-entries of a function already in flight at the same depth */
  __u64 exits;      /* in flight when their process exited or hibernated */
};

/* Pairing in the BEAM (Orion's patch 0007, beam_dtrace_build/include/erl_orion_pair.h): the
 * emulator pairs calls itself and fires erlang:orion__call once per call with integer
 * arguments: (owner << 16) | slot, how | tail_calls << 2, wall ns, on-CPU ns; or, while
 * orion__calls is attached (patch 0010), the same four per call in batches. The program
 * only keeps the calls of its own record in each BEAM: pair_owners maps (BEAM, record) to
 * the first of the max_slots function slots that BEAM's record gets in this capture. */
struct pair_owner_key {
  __u32 tgid;  /* the BEAM's OS pid */
  __u32 owner; /* the capture's record in its pairing table */
};

/* Batches (patch 0010): erlang:orion__calls(batch, n) carries up to PAIR_BATCH calls, each
 * laid out as ErtsOrionPairCall (erl_orion_pair.h; checked in userspace/probes/capture.cc). */
#define PAIR_BATCH 64 /* ERTS_ORION_PAIR_BATCH */
struct pair_call {
  __u32 owner_slot;
  __u32 how_tails;
  __u64 wall_ns;
  __u64 cpu_ns;
};
struct pair_batch {
  struct pair_call call[PAIR_BATCH];
};

#define PAIR_HOW_RETURN 0    /* ERTS_ORION_PAIR_RETURN */
#define PAIR_HOW_EXCEPTION 1 /* ERTS_ORION_PAIR_EXCEPTION */
#define PAIR_HOW_EXIT 2      /* ERTS_ORION_PAIR_EXIT */

/* Global counters: index of the `counters` per-CPU array. */
enum capture_counter {
  CAPTURE_EVENTS = 0,       /* probe hits seen by the programs */
  CAPTURE_MATCHED,          /* entries of targeted functions */
  CAPTURE_PROCS_INSERTED,   /* procs entries created (evictions = inserted - deleted - live) */
  CAPTURE_PROCS_DELETED,    /* procs entries deleted by the programs */
  CAPTURE_DEPTH_OVERFLOW,   /* entries dropped: CAPTURE_MAX_FRAMES frames already in flight */
  CAPTURE_SLOTS_EXHAUSTED,  /* entries dropped: no free function slot */
  CAPTURE_MFA_TRUNCATED,    /* MFA strings longer than CAPTURE_MFA_LEN - 1 */
  CAPTURE_READ_ERRORS,      /* probe arguments that could not be read */
  CAPTURE_COUNTER_COUNT,
};

/* FNV-1a, 64 bits: the hash of pid and MFA strings on both sides. */
#define ORION_FNV_OFFSET 0xcbf29ce484222325ULL
#define ORION_FNV_PRIME 0x100000001b3ULL

static inline __u64 orion_fnv1a_step(__u64 h, __u8 byte) {
  return (h ^ byte) * ORION_FNV_PRIME;
}

#endif /* ORION_BPF_CAPTURE_H */
