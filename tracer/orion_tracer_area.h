/* The contract between orion_tracer_nif.c (in the traced BEAM) and
 * userspace/probes/tracer_capture.cc (orion, which reads it with process_vm_readv).
 *
 * Tracer mode (docs/tracer.md) pairs each traced call with its return inside the NIF and counts
 * the latency in the NIF's memory, in the buckets of sketch/bucket_index.h: the one definition
 * that bpf/ and sketch/ share, so a tracer-mode histogram folds into a DDSketch exactly as a
 * kernel one. Orion reads the counts once a second and at the end; nothing per event leaves the
 * BEAM. (Until the fifth benchmark run the NIF fired a USDT probe per event and BPF did the
 * pairing: two uprobe traps and two programs cost more per call than all of Erlang tracing's
 * baseline; docs/performance.md has the numbers.)
 *
 * Layout. One `struct orion_tracer_area` per loaded NIF, allocated when the library loads and
 * freed when it unloads (the module's purge). `orion_tracer:area/0` answers its address. Each
 * scheduler thread that handles a traced event gets its own `struct orion_tracer_thread` (no
 * atomic operation on the event path: a thread only writes its own block), whose address it
 * publishes in `threads[]`; each target's histogram of that thread is allocated at its first
 * sample and published in `hists[]`. Addresses are the BEAM's, stored as 64-bit integers so
 * that the C++ side reads the same layout. A reader sees counts that are at most a few events
 * behind; once the trace patterns are cleared they are final.
 *
 * Plain C, fixed-width types, no padding holes: the same bytes in both compilers. */
#ifndef ORION_TRACER_AREA_H
#define ORION_TRACER_AREA_H

#include <stdint.h>

#include "sketch/bucket_index.h"

#define ORION_TRACER_MAGIC 0x314543415254524fULL /* "ORTRACE1" in memory: checked by orion */
#define ORION_TRACER_VERSION 1
#define ORION_TRACER_MAX_TARGETS 128 /* ids the tracer state may hold: orion_tracer.erl's limit */
#define ORION_TRACER_MAX_THREADS 256 /* scheduler threads with a block of their own */
#define ORION_TRACER_MAX_FRAMES 32   /* timed calls in flight per Erlang process */
#define ORION_TRACER_PROCS 8192      /* Erlang processes with calls in flight at once */

/* Counters of one thread: index of orion_tracer_thread.counters. */
enum orion_tracer_counter {
  ORION_TRACER_CALLS = 0,      /* call events of a target */
  ORION_TRACER_RETURNS,        /* return_from events */
  ORION_TRACER_EXCEPTIONS,     /* exception_from events */
  ORION_TRACER_UNPAIRED,       /* returns with no call in flight (made before the capture) */
  ORION_TRACER_DEPTH_OVERFLOW, /* calls deeper than ORION_TRACER_MAX_FRAMES (counted, not timed) */
  ORION_TRACER_PROCS_FULL,     /* calls of a process the full process table had no room for */
  ORION_TRACER_COUNTER_COUNT,
};

/* One target's latencies on one thread: exact stats and the bucket counts (slot i = sketch
 * index i, sketch/bucket_index.h). */
struct orion_tracer_hist {
  uint64_t count;
  uint64_t sum_ns;
  uint64_t min_ns; /* meaningful when count > 0 */
  uint64_t max_ns;
  uint64_t slots[ORION_BUCKET_COUNT];
};

struct orion_tracer_thread {
  uint64_t counters[ORION_TRACER_COUNTER_COUNT];
  uint64_t exceptions[ORION_TRACER_MAX_TARGETS];
  uint64_t hists[ORION_TRACER_MAX_TARGETS]; /* struct orion_tracer_hist addresses, 0 = none */
};

struct orion_tracer_area {
  uint64_t magic;   /* ORION_TRACER_MAGIC */
  uint32_t version; /* ORION_TRACER_VERSION */
  uint32_t size;    /* sizeof(struct orion_tracer_area) */
  uint32_t max_threads;
  uint32_t max_targets;
  uint32_t hist_slots;
  uint32_t nthreads;              /* blocks handed out (atomic); may exceed max_threads */
  uint64_t threads_full_events;   /* events of threads beyond max_threads, dropped (atomic) */
  uint64_t threads[ORION_TRACER_MAX_THREADS]; /* struct orion_tracer_thread addresses */
};

#endif /* ORION_TRACER_AREA_H */
