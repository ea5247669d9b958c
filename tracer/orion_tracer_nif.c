/* orion_tracer_nif: the erl_tracer NIF of Orion's tracer mode (docs/tracer.md).
 *
 * ERTS calls enabled/3 and trace/5 in the calling process itself, synchronously, when a call of
 * a target that its meta trace pattern selects starts or ends (orion_tracer.erl). For call,
 * return_from and exception_from events trace/5 reads the clock, pairs the event with the
 * process's calls in flight and counts the latency in this library's memory
 * (tracer/orion_tracer_area.h), which orion reads from outside with process_vm_readv. No message
 * is sent, no term is built, no lock is taken, and nothing crosses into the kernel.
 *
 * Pairing. Every traced call carries an exception_trace action, so ERTS reports exactly one
 * return_from or exception_from per call that ends, innermost first: per Erlang process a stack
 * of the calls in flight is enough. The stacks live in an open-addressing table keyed by the
 * pid's term word (an immediate, unique among the node's live processes). Only the process
 * itself touches its entry, on whichever scheduler runs it (the scheduler's run-queue locks order
 * a migration), so an entry needs no lock; claiming a free slot is one compare-and-swap. The
 * entry is released when the stack empties. A process killed inside a traced call never ends it
 * (under meta tracing no exception_from comes), so its entry stays: a slot is found within
 * PROBE_WINDOW steps, reclaiming entries of processes that are gone, or not at all (the call is
 * then counted, not timed: PROCS_FULL).
 *
 * Timing: CLOCK_MONOTONIC (the clock of bpf_ktime_get_ns and of the workload's own
 * erlang:monotonic_time), read through the vDSO.
 *
 * The library still fires USDT probes (provider "orion", integer arguments only) for independent
 * tools such as bpftrace; orion itself does not attach to them. On a 5-byte nop each costs a few
 * instructions when nothing is attached:
 *   orion:call(u64 pid, u32 target), orion:return_from(u64 pid, u32 target),
 *   orion:exception_from(u64 pid, u32 target)
 */
#include <erl_nif.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sdt.h>
#include <time.h>

#include "tracer/orion_tracer_area.h"

#if defined(__x86_64__)
/* Probe sites on a 5-byte nop (as the BEAM's patch 0004): cheaper if someone attaches. */
#undef _SDT_NOP
#define _SDT_NOP .nops 5
#endif

#define PROBE_WINDOW 64
#define KEY_EMPTY 0u /* never a pid's term word (its tag bits are 0b0011) */
#define KEY_FREED 1u

struct frame {
  uint64_t start_ns;
  uint32_t target;
  uint32_t pad;
};

struct proc {
  uint32_t depth; /* calls in flight; frames[0 .. min(depth, MAX_FRAMES) - 1] are timed */
  uint32_t pad;
  struct frame frames[ORION_TRACER_MAX_FRAMES];
};

/* One loaded instance of the library (ERTS may hold an old and a new one during an upgrade). */
struct instance {
  uint64_t serial;                  /* the load's time: tells instances at one address apart */
  struct orion_tracer_area* area;  /* what orion reads */
  uint64_t* keys;                   /* ORION_TRACER_PROCS pid words, KEY_EMPTY, KEY_FREED */
  struct proc* procs;               /* mmap'd: pages are touched only when used */
  pthread_t owners[ORION_TRACER_MAX_THREADS]; /* the thread of each block in area->threads */
};

/* The calling thread's block of the instance it last served. */
static __thread uint64_t t_serial;
static __thread struct orion_tracer_thread* t_block;

static ERL_NIF_TERM atom_trace;
static ERL_NIF_TERM atom_discard;
static ERL_NIF_TERM atom_ok;
static ERL_NIF_TERM atom_call;
static ERL_NIF_TERM atom_return_from;
static ERL_NIF_TERM atom_exception_from;
static ERL_NIF_TERM atom_trace_status;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void* map_zeroed(size_t size) {
  void* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void free_instance(struct instance* in) {
  if (!in) return;
  if (in->area) {
    const uint32_t n = in->area->nthreads < ORION_TRACER_MAX_THREADS ? in->area->nthreads
                                                                      : ORION_TRACER_MAX_THREADS;
    for (uint32_t i = 0; i < n; ++i) {
      struct orion_tracer_thread* b = (struct orion_tracer_thread*)(uintptr_t)in->area->threads[i];
      if (!b) continue;
      for (int t = 0; t < ORION_TRACER_MAX_TARGETS; ++t) {
        if (b->hists[t]) munmap((void*)(uintptr_t)b->hists[t], sizeof(struct orion_tracer_hist));
      }
      munmap(b, sizeof(*b));
    }
    munmap(in->area, sizeof(*in->area));
  }
  if (in->keys) munmap(in->keys, sizeof(uint64_t) * ORION_TRACER_PROCS);
  if (in->procs) munmap(in->procs, sizeof(struct proc) * ORION_TRACER_PROCS);
  enif_free(in);
}

static int load(ErlNifEnv* env, void** priv, ERL_NIF_TERM info) {
  (void)info;
  atom_trace = enif_make_atom(env, "trace");
  atom_discard = enif_make_atom(env, "discard");
  atom_ok = enif_make_atom(env, "ok");
  atom_call = enif_make_atom(env, "call");
  atom_return_from = enif_make_atom(env, "return_from");
  atom_exception_from = enif_make_atom(env, "exception_from");
  atom_trace_status = enif_make_atom(env, "trace_status");

  struct instance* in = enif_alloc(sizeof(*in));
  if (!in) return 1;
  memset(in, 0, sizeof(*in));
  in->serial = now_ns() | 1; /* never the 0 of a thread that served no instance yet */
  in->area = map_zeroed(sizeof(*in->area));
  in->keys = map_zeroed(sizeof(uint64_t) * ORION_TRACER_PROCS);
  in->procs = map_zeroed(sizeof(struct proc) * ORION_TRACER_PROCS);
  if (!in->area || !in->keys || !in->procs) {
    free_instance(in);
    return 1;
  }
  in->area->version = ORION_TRACER_VERSION;
  in->area->size = sizeof(*in->area);
  in->area->max_threads = ORION_TRACER_MAX_THREADS;
  in->area->max_targets = ORION_TRACER_MAX_TARGETS;
  in->area->hist_slots = ORION_BUCKET_COUNT;
  __atomic_store_n(&in->area->magic, ORION_TRACER_MAGIC, __ATOMIC_RELEASE);
  *priv = in;
  return 0;
}

static int upgrade(ErlNifEnv* env, void** priv, void** old_priv, ERL_NIF_TERM info) {
  (void)old_priv; /* the old instance keeps its own memory until its unload */
  return load(env, priv, info);
}

static void unload(ErlNifEnv* env, void* priv) {
  (void)env;
  free_instance(priv);
}

/* The calling thread's block in `in`, or NULL past ORION_TRACER_MAX_THREADS threads. */
static struct orion_tracer_thread* thread_block(struct instance* in) {
  if (t_serial == in->serial) return t_block;
  const pthread_t self = pthread_self();
  struct orion_tracer_area* a = in->area;
  struct orion_tracer_thread* block = NULL;
  const uint32_t n = __atomic_load_n(&a->nthreads, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n && i < ORION_TRACER_MAX_THREADS; ++i) {
    if (__atomic_load_n(&a->threads[i], __ATOMIC_ACQUIRE) && pthread_equal(in->owners[i], self)) {
      block = (struct orion_tracer_thread*)(uintptr_t)a->threads[i];
      break;
    }
  }
  if (!block) {
    const uint32_t i = __atomic_fetch_add(&a->nthreads, 1, __ATOMIC_ACQ_REL);
    if (i < ORION_TRACER_MAX_THREADS) {
      block = map_zeroed(sizeof(*block));
      if (block) {
        in->owners[i] = self;
        __atomic_store_n(&a->threads[i], (uint64_t)(uintptr_t)block, __ATOMIC_RELEASE);
      }
    }
  }
  t_serial = in->serial;
  t_block = block;
  return block;
}

static uint32_t slot_of(uint64_t pid) {
  return (uint32_t)((pid * 0x9E3779B97F4A7C15ull) >> 32) & (ORION_TRACER_PROCS - 1);
}

/* The table index of pid's entry, or -1. */
static int find_proc(const struct instance* in, uint64_t pid) {
  const uint32_t h = slot_of(pid);
  for (uint32_t i = 0; i < PROBE_WINDOW; ++i) {
    const uint32_t idx = (h + i) & (ORION_TRACER_PROCS - 1);
    const uint64_t k = __atomic_load_n(&in->keys[idx], __ATOMIC_ACQUIRE);
    if (k == pid) return (int)idx;
    if (k == KEY_EMPTY) return -1;
  }
  return -1;
}

static int claim(struct instance* in, uint32_t idx, uint64_t expected, uint64_t pid) {
  if (!__atomic_compare_exchange_n(&in->keys[idx], &expected, pid, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_RELAXED)) {
    return 0;
  }
  in->procs[idx].depth = 0;
  return 1;
}

/* A new entry for pid (which has none), or -1 when its window is full of live processes. */
static int insert_proc(ErlNifEnv* env, struct instance* in, uint64_t pid) {
  const uint32_t h = slot_of(pid);
  for (uint32_t i = 0; i < PROBE_WINDOW; ++i) {
    const uint32_t idx = (h + i) & (ORION_TRACER_PROCS - 1);
    const uint64_t k = __atomic_load_n(&in->keys[idx], __ATOMIC_ACQUIRE);
    if ((k == KEY_EMPTY || k == KEY_FREED) && claim(in, idx, k, pid)) return (int)idx;
  }
  /* Full: entries of processes that died with calls in flight (killed, say) are nobody's. */
  for (uint32_t i = 0; i < PROBE_WINDOW; ++i) {
    const uint32_t idx = (h + i) & (ORION_TRACER_PROCS - 1);
    const uint64_t k = __atomic_load_n(&in->keys[idx], __ATOMIC_ACQUIRE);
    ErlNifPid other;
    if (k == KEY_EMPTY || k == KEY_FREED || !enif_get_local_pid(env, (ERL_NIF_TERM)k, &other)) {
      continue;
    }
    if (!enif_is_process_alive(env, &other) && claim(in, idx, k, pid)) return (int)idx;
  }
  return -1;
}

static void record(struct orion_tracer_thread* b, uint32_t target, uint64_t ns) {
  struct orion_tracer_hist* h = (struct orion_tracer_hist*)(uintptr_t)b->hists[target];
  if (!h) {
    h = map_zeroed(sizeof(*h));
    if (!h) return;
    __atomic_store_n(&b->hists[target], (uint64_t)(uintptr_t)h, __ATOMIC_RELEASE);
  }
  h->slots[orion_bucket_index(ns)] += 1;
  if (h->count == 0 || ns < h->min_ns) h->min_ns = ns;
  if (ns > h->max_ns) h->max_ns = ns;
  h->sum_ns += ns;
  __atomic_store_n(&h->count, h->count + 1, __ATOMIC_RELEASE);
}

static void on_call(ErlNifEnv* env, struct instance* in, struct orion_tracer_thread* b,
                    uint64_t pid, uint32_t target, uint64_t now) {
  b->counters[ORION_TRACER_CALLS] += 1;
  int idx = find_proc(in, pid);
  if (idx < 0) idx = insert_proc(env, in, pid);
  if (idx < 0) {
    b->counters[ORION_TRACER_PROCS_FULL] += 1;
    return;
  }
  struct proc* p = &in->procs[idx];
  const uint32_t d = p->depth;
  if (d < ORION_TRACER_MAX_FRAMES) {
    p->frames[d].start_ns = now;
    p->frames[d].target = target;
  } else {
    b->counters[ORION_TRACER_DEPTH_OVERFLOW] += 1;
  }
  p->depth = d + 1;
}

/* Ends the innermost call in flight of pid: a latency sample if it returned, an exception
 * count if it raised. */
static void on_end(struct instance* in, struct orion_tracer_thread* b, uint64_t pid,
                   uint32_t target, uint64_t now, int returned) {
  b->counters[returned ? ORION_TRACER_RETURNS : ORION_TRACER_EXCEPTIONS] += 1;
  const int idx = find_proc(in, pid);
  if (idx < 0 || in->procs[idx].depth == 0) {
    b->counters[ORION_TRACER_UNPAIRED] += 1; /* a call made before the capture started */
    return;
  }
  struct proc* p = &in->procs[idx];
  const uint32_t d = p->depth - 1;
  p->depth = d;
  if (d < ORION_TRACER_MAX_FRAMES) {
    if (p->frames[d].target != target) {
      b->counters[ORION_TRACER_UNPAIRED] += 1;
    } else if (returned) {
      record(b, target, now - p->frames[d].start_ns);
    } else {
      b->exceptions[target] += 1;
    }
  }
  if (d == 0) __atomic_store_n(&in->keys[idx], (uint64_t)KEY_FREED, __ATOMIC_RELEASE);
}

/* enabled(TraceTag, TracerState, Tracee): trace the three events we count, keep the tracer
 * (trace_status: ERTS asks it first, before each event), discard everything else before ERTS
 * builds its trace term. */
static ERL_NIF_TERM enabled(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  (void)env;
  (void)argc;
  const ERL_NIF_TERM tag = argv[0];
  if (enif_is_identical(tag, atom_trace_status) || enif_is_identical(tag, atom_call) ||
      enif_is_identical(tag, atom_return_from) || enif_is_identical(tag, atom_exception_from)) {
    return atom_trace;
  }
  return atom_discard;
}

/* trace(TraceTag, TracerState, Tracee, TraceTerm, Opts): each target has its own meta trace
 * pattern whose tracer state is the target's id (orion_tracer.erl), so the state says which
 * function it is and TraceTerm is not needed. */
static ERL_NIF_TERM trace(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  (void)argc;
  const uint64_t now = now_ns();
  const ERL_NIF_TERM tag = argv[0];
  unsigned int id;
  if (!enif_get_uint(env, argv[1], &id) || id >= ORION_TRACER_MAX_TARGETS) return atom_ok;
  if (!enif_is_pid(env, argv[2])) return atom_ok;
  struct instance* in = enif_priv_data(env);
  struct orion_tracer_thread* b = thread_block(in);
  if (!b) {
    __atomic_fetch_add(&in->area->threads_full_events, 1, __ATOMIC_RELAXED);
    return atom_ok;
  }
  const uint64_t pid = (uint64_t)argv[2];
  if (enif_is_identical(tag, atom_call)) {
    DTRACE_PROBE2(orion, call, pid, id);
    on_call(env, in, b, pid, id, now);
  } else if (enif_is_identical(tag, atom_return_from)) {
    DTRACE_PROBE2(orion, return_from, pid, id);
    on_end(in, b, pid, id, now, 1);
  } else if (enif_is_identical(tag, atom_exception_from)) {
    DTRACE_PROBE2(orion, exception_from, pid, id);
    on_end(in, b, pid, id, now, 0);
  }
  return atom_ok;
}

/* area(): the address of this instance's counts, for orion to read. */
static ERL_NIF_TERM area(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  (void)argc;
  (void)argv;
  const struct instance* in = enif_priv_data(env);
  return enif_make_uint64(env, (ErlNifUInt64)(uintptr_t)in->area);
}

static ErlNifFunc nif_funcs[] = {
    {"enabled", 3, enabled, 0},
    {"trace", 5, trace, 0},
    {"area", 0, area, 0},
};

ERL_NIF_INIT(orion_tracer, nif_funcs, load, NULL, upgrade, unload)
