/* The contract between bpf/tracer.bpf.c and userspace/probes/tracer_capture.cc.
 *
 * tracer: latency of Erlang functions from the probes of Orion's erl_tracer NIF
 * (tracer/orion_tracer_nif.c, docs/tracer.md), for BEAMs whose own function probes cannot fire
 * (the JIT, builds without USDT). ERTS's match specs choose the calls; the NIF fires
 *   orion:call(pid, target), orion:return_from(pid, target), orion:exception_from(pid, target)
 * with integer arguments only: `pid` is the Erlang pid's term word, `target` a small id that
 * userspace gave the function (0 .. TRACER_MAX_TARGETS - 1).
 *
 * Pairing. Every traced call carries an exception_trace action, so ERTS reports exactly one
 * return_from or exception_from per call event, innermost first: per Erlang process a stack of
 * the calls in flight is enough. A call pushes (target, time); a return pops it and records
 * one latency sample in the target's histogram; an exception pops it and counts it. Deeper
 * nesting than TRACER_MAX_FRAMES keeps counting depth (so the pairing stays exact) without
 * timing the calls beyond it. A process's entry stays when its stack empties (inserting and
 * deleting it on every call cost about 0.5 µs per call); the LRU map evicts the entries of
 * processes that stopped calling targets. Evicting one with calls in flight makes their
 * returns unpaired (counted).
 *
 * Histograms: the layout of bpf/capture.h (struct hist, sketch/bucket_index.h), one wall-time
 * histogram per target, so userspace folds them into DDSketches exactly as a probes capture.
 */
#ifndef ORION_BPF_TRACER_H
#define ORION_BPF_TRACER_H

#include "capture.h" /* struct hist, struct slot_counters: the same layout as probes mode */

#define TRACER_MAX_TARGETS 128 /* ids the NIF's state may hold; also orion_tracer.erl's limit */
#define TRACER_MAX_FRAMES 32   /* timed calls in flight per Erlang process */

/* tracer_procs key: one Erlang process of one BEAM. */
struct tracer_proc_key {
  __u32 tgid; /* the BEAM's OS pid */
  __u32 pad;
  __u64 pid; /* the Erlang pid's term word */
};

struct tracer_frame {
  __u64 start_ns; /* bpf_ktime_get_ns() at the call probe */
  __u32 target;
  __u32 pad;
};

struct tracer_proc {
  __u32 depth; /* calls in flight; frames[0 .. min(depth, TRACER_MAX_FRAMES) - 1] are timed */
  __u32 pad;
  struct tracer_frame frames[TRACER_MAX_FRAMES];
};

/* Global counters: index of the `tracer_counters` per-CPU array. */
enum tracer_counter {
  TRACER_CALLS = 0,      /* orion:call hits */
  TRACER_RETURNS,        /* orion:return_from hits */
  TRACER_EXCEPTIONS,     /* orion:exception_from hits */
  TRACER_UNPAIRED,       /* returns with no call in flight, or of another target */
  TRACER_DEPTH_OVERFLOW, /* calls deeper than TRACER_MAX_FRAMES (counted, not timed) */
  TRACER_BAD_TARGET,     /* target ids out of range */
  TRACER_PROCS_INSERTED, /* tracer_procs entries created (never deleted: see above) */
  TRACER_COUNTER_COUNT,
};

#endif /* ORION_BPF_TRACER_H */
