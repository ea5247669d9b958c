// SPDX-License-Identifier: GPL-2.0
/* capture: per-function latency histograms from the BEAM's function probes.
 * The contract with userspace, and the design, are in capture.h; the call semantics in
 * docs/probes.md. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "capture.h"
#include "usdt_fast.h"

/* Set by the loader before load. */
const volatile __u32 max_slots = 128;

/* The next free function slot (allocated by the programs, never reused). */
__u32 next_slot = 0;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u64);   /* module hash */
  __type(value, __u32); /* TARGET_MODULE_* */
} target_modules SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct target_key);
  __type(value, __u8);
} targets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256); /* 2 * max_slots, set by the loader */
  __type(key, __u64);       /* mfa hash */
  __type(value, __u32);     /* slot */
} mfa_slots SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 128); /* max_slots */
  __type(key, __u32);
  __type(value, char[CAPTURE_MFA_LEN]);
} slot_names SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct proc_key);
  __type(value, struct proc_state);
} procs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 256); /* max_slots * CAPTURE_KINDS */
  __type(key, __u32);
  __type(value, struct hist);
} hists SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 128); /* max_slots */
  __type(key, __u32);
  __type(value, struct slot_counters);
} slot_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CAPTURE_COUNTER_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/* Patch 0010: where orion_pair_calls copies a batch (too large for the stack). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct pair_batch);
} batch_buf SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, struct pair_owner_key);
  __type(value, __u32); /* the record's first slot */
} pair_owners SEC(".maps");

/* A zeroed proc_state to insert from (it does not fit on the BPF stack). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct proc_state);
} proc_init SEC(".maps");

static __always_inline void bump_by(__u32 counter, __u64 n) {
  __u64 *v = bpf_map_lookup_elem(&counters, &counter);
  if (v) *v += n; /* per-CPU, and uprobe programs run with preemption disabled */
}

static __always_inline void bump(__u32 counter) { bump_by(counter, 1); }

/* Hashes of the parts of an MFA string (capture.h, "Identification"). */
struct mfa_hashes {
  __u64 module;
  __u64 mf;
  __u64 mfa;
};

/* One pass over the MFA string. The module ends at the first ':' (for a quoted module, the
 * first ':' right after a quote); the function at the last '/', since only the arity's digits
 * follow it. The module lookup happens as soon as the module is hashed, so an untargeted
 * function costs one lookup and the hashing of its module name. Returns 1 if targeted. */
static __always_inline int is_targeted(const char *mfa, int len, struct mfa_hashes *h) {
  __u64 hash = ORION_FNV_OFFSET;
  __u32 kinds = 0;
  int module_found = 0;
  char prev = 0;
  const char first = mfa[0];
  for (int i = 0; i < CAPTURE_MFA_LEN; i++) {
    if (i >= len) break;
    char c = mfa[i];
    if (!module_found && c == ':' && (first != '\'' || prev == '\'')) {
      module_found = 1;
      h->module = hash;
      __u32 *flags = bpf_map_lookup_elem(&target_modules, &h->module);
      if (!flags) return 0;
      kinds = *flags;
    }
    if (c == '/') h->mf = hash;
    hash = orion_fnv1a_step(hash, c);
    prev = c;
  }
  if (!module_found) return 0;
  h->mfa = hash;
  if (kinds & TARGET_MODULE_ALL) return 1;
  struct target_key key = {};
  if (kinds & TARGET_MODULE_MF) {
    key.hash = h->mf;
    key.kind = TARGET_KIND_MF;
    if (bpf_map_lookup_elem(&targets, &key)) return 1;
  }
  if (kinds & TARGET_MODULE_MFA) {
    key.hash = h->mfa;
    key.kind = TARGET_KIND_MFA;
    if (bpf_map_lookup_elem(&targets, &key)) return 1;
  }
  return 0;
}

/* The function slot of a matched MFA, allocated on first sight; -1 when none is free. */
static __always_inline int slot_of(__u64 mfa_hash, const char *mfa) {
  __u32 *found = bpf_map_lookup_elem(&mfa_slots, &mfa_hash);
  if (found) return *found;
  __u32 slot = __sync_fetch_and_add(&next_slot, 1);
  if (slot >= max_slots) {
    bump(CAPTURE_SLOTS_EXHAUSTED);
    return -1;
  }
  char *name = bpf_map_lookup_elem(&slot_names, &slot);
  if (name) __builtin_memcpy(name, mfa, CAPTURE_MFA_LEN);
  if (bpf_map_update_elem(&mfa_slots, &mfa_hash, &slot, BPF_NOEXIST) != 0) {
    /* Another CPU published this MFA first: use its slot; ours stays unused. */
    found = bpf_map_lookup_elem(&mfa_slots, &mfa_hash);
    return found ? (int)*found : -1;
  }
  return slot;
}

static __always_inline int read_proc_key(const void *pid_str, struct proc_key *key) {
  char pid[CAPTURE_PID_LEN];
  long len = bpf_probe_read_user_str(pid, sizeof(pid), pid_str);
  if (len <= 0) {
    bump(CAPTURE_READ_ERRORS);
    return -1;
  }
  __u64 hash = ORION_FNV_OFFSET;
  for (int i = 0; i < CAPTURE_PID_LEN; i++) {
    if (i >= len - 1) break;
    hash = orion_fnv1a_step(hash, pid[i]);
  }
  key->tgid = bpf_get_current_pid_tgid() >> 32;
  key->pad = 0;
  key->pid_hash = hash;
  return 0;
}

/* The process's on-CPU clock now (it is running: the probes fire in its context). */
static __always_inline __u64 oncpu_now(const struct proc_state *p, __u64 now) {
  return p->sched_in_ns ? p->oncpu_ns + (now - p->sched_in_ns) : p->oncpu_ns;
}

/* Adds one sample to a function's histogram. A global (not inlined) function: the verifier
 * checks it once instead of once per frame of the return loop, which keeps the bucket
 * index's binary search from multiplying the return program's states. */
__attribute__((noinline)) int record_sample(__u32 slot, __u32 kind, __u64 ns) {
  __u32 key = slot * CAPTURE_KINDS + kind;
  struct hist *h = bpf_map_lookup_elem(&hists, &key);
  if (!h) return 0;
  int idx = orion_bucket_index(ns);
  if (idx < 0 || idx >= CAPTURE_HIST_SLOTS) return 0;
  h->slots[idx] += 1;
  if (h->stats.count == 0 || ns < h->stats.min_ns) h->stats.min_ns = ns;
  if (ns > h->stats.max_ns) h->stats.max_ns = ns;
  h->stats.count += 1;
  h->stats.sum_ns += ns;
  return 0;
}

enum frame_end { END_EXCEPTION, END_EXIT };

static __always_inline void count_end(__u32 slot, enum frame_end how) {
  struct slot_counters *c = bpf_map_lookup_elem(&slot_counters, &slot);
  if (!c) return;
  if (how == END_EXCEPTION) {
    c->exceptions += 1;
  } else {
    c->exits += 1;
  }
}

/* Ends, without a latency sample, the frames on top of the stack entered deeper than
 * `depth` (or at `depth` too, when `inclusive`). */
static __always_inline void unwind(struct proc_state *p, int depth, int inclusive,
                                   enum frame_end how) {
  for (int i = 0; i < CAPTURE_MAX_FRAMES; i++) {
    __u32 n = p->nframes;
    if (n == 0 || n > CAPTURE_MAX_FRAMES) break;
    struct frame *f = &p->frames[(n - 1) & (CAPTURE_MAX_FRAMES - 1)];
    if (f->depth < depth || (f->depth == depth && !inclusive)) break;
    count_end(f->slot, how);
    p->nframes = n - 1;
  }
}

static __always_inline void release_if_empty(struct proc_state *p, struct proc_key *key) {
  if (p->nframes == 0 && bpf_map_delete_elem(&procs, key) == 0) bump(CAPTURE_PROCS_DELETED);
}

static __always_inline struct proc_state *get_or_create_proc(struct proc_key *key, __u64 now) {
  struct proc_state *p = bpf_map_lookup_elem(&procs, key);
  if (p) return p;
  __u32 zero = 0;
  struct proc_state *init = bpf_map_lookup_elem(&proc_init, &zero);
  if (!init) return 0;
  init->sched_in_ns = now; /* the entry probe fires while the process runs */
  init->oncpu_ns = 0;
  init->nframes = 0;
  if (bpf_map_update_elem(&procs, key, init, BPF_NOEXIST) == 0) bump(CAPTURE_PROCS_INSERTED);
  return bpf_map_lookup_elem(&procs, key);
}

SEC("usdt")
int orion_entry(struct pt_regs *ctx) {
  char mfa[CAPTURE_MFA_LEN];
  struct mfa_hashes h = {};
  long args[3];

  bump(CAPTURE_EVENTS);
  if (orion_usdt_args(ctx, args, 3) != 0) {
    bump(CAPTURE_READ_ERRORS);
    return 0;
  }
  const void *pid_str = (const void *)args[0];
  const void *mfa_str = (const void *)args[1];
  const int depth = (int)args[2];
  long len = bpf_probe_read_user_str(mfa, sizeof(mfa), mfa_str);
  if (len <= 0) {
    bump(CAPTURE_READ_ERRORS);
    return 0;
  }
  if (!is_targeted(mfa, len - 1, &h)) return 0;
  bump(CAPTURE_MATCHED);
  if (len == CAPTURE_MFA_LEN) bump(CAPTURE_MFA_TRUNCATED);

  int slot = slot_of(h.mfa, mfa);
  if (slot < 0) return 0;
  struct proc_key key;
  if (read_proc_key(pid_str, &key) != 0) return 0;
  __u64 now = bpf_ktime_get_ns();
  struct proc_state *p = get_or_create_proc(&key, now);
  if (!p) return 0;

  unwind(p, depth, /*inclusive=*/0, END_EXCEPTION);
  /* A tail-call chain shares one depth; a function already in it is re-entered by tail
   * recursion and its first entry keeps measuring. */
  for (int i = 0; i < CAPTURE_MAX_FRAMES; i++) {
    __u32 n = p->nframes;
    if (i >= n || n > CAPTURE_MAX_FRAMES) break;
    struct frame *f = &p->frames[(n - 1 - i) & (CAPTURE_MAX_FRAMES - 1)];
    if (f->depth != depth) break;
    if (f->slot == (__u32)slot) {
      struct slot_counters *c = bpf_map_lookup_elem(&slot_counters, &f->slot);
      if (c) c->tail_calls += 1;
      return 0;
    }
  }
  __u32 n = p->nframes;
  if (n >= CAPTURE_MAX_FRAMES) {
    bump(CAPTURE_DEPTH_OVERFLOW);
    return 0;
  }
  struct frame *f = &p->frames[n & (CAPTURE_MAX_FRAMES - 1)];
  f->start_ns = now;
  f->cpu_start_ns = oncpu_now(p, now);
  f->depth = depth;
  f->slot = slot;
  p->nframes = n + 1;
  return 0;
}

SEC("usdt")
int orion_return(struct pt_regs *ctx) {
  struct proc_key key;
  long args[3];

  bump(CAPTURE_EVENTS);
  if (orion_usdt_args(ctx, args, 3) != 0) {
    bump(CAPTURE_READ_ERRORS);
    return 0;
  }
  const void *pid_str = (const void *)args[0];
  const int depth = (int)args[2];
  if (read_proc_key(pid_str, &key) != 0) return 0;
  struct proc_state *p = bpf_map_lookup_elem(&procs, &key);
  if (!p) return 0;
  __u64 now = bpf_ktime_get_ns();
  __u64 cpu = oncpu_now(p, now);

  unwind(p, depth, /*inclusive=*/0, END_EXCEPTION);
  /* The return ends every frame of the tail-call chain at this depth. */
  for (int i = 0; i < CAPTURE_MAX_FRAMES; i++) {
    __u32 n = p->nframes;
    if (n == 0 || n > CAPTURE_MAX_FRAMES) break;
    struct frame *f = &p->frames[(n - 1) & (CAPTURE_MAX_FRAMES - 1)];
    if (f->depth != depth) break;
    record_sample(f->slot, CAPTURE_WALL, now - f->start_ns);
    record_sample(f->slot, CAPTURE_CPU, cpu - f->cpu_start_ns);
    p->nframes = n - 1;
  }
  release_if_empty(p, &key);
  return 0;
}

SEC("usdt")
int BPF_USDT(orion_catch, void *pid_str, int depth) {
  struct proc_key key;

  bump(CAPTURE_EVENTS);
  if (read_proc_key(pid_str, &key) != 0) return 0;
  struct proc_state *p = bpf_map_lookup_elem(&procs, &key);
  if (!p) return 0;
  unwind(p, depth, /*inclusive=*/1, END_EXCEPTION);
  release_if_empty(p, &key);
  return 0;
}

SEC("usdt")
int BPF_USDT(orion_proc_exit, void *pid_str) {
  struct proc_key key;

  bump(CAPTURE_EVENTS);
  if (read_proc_key(pid_str, &key) != 0) return 0;
  struct proc_state *p = bpf_map_lookup_elem(&procs, &key);
  if (!p) return 0;
  unwind(p, -1, /*inclusive=*/1, END_EXIT);
  release_if_empty(p, &key);
  return 0;
}

SEC("usdt")
int BPF_USDT(orion_sched_in, void *pid_str) {
  struct proc_key key;

  if (read_proc_key(pid_str, &key) != 0) return 0;
  struct proc_state *p = bpf_map_lookup_elem(&procs, &key);
  if (p) p->sched_in_ns = bpf_ktime_get_ns();
  return 0;
}

SEC("usdt")
int BPF_USDT(orion_sched_out, void *pid_str) {
  struct proc_key key;

  if (read_proc_key(pid_str, &key) != 0) return 0;
  struct proc_state *p = bpf_map_lookup_elem(&procs, &key);
  if (p && p->sched_in_ns) {
    p->oncpu_ns += bpf_ktime_get_ns() - p->sched_in_ns;
    p->sched_in_ns = 0;
  }
  return 0;
}

/* The slot of this capture that a BEAM's (owner << 16) | slot stands for, or -1 when the
 * record is another capture's. */
static __always_inline long pair_slot(__u32 owner_slot) {
  struct pair_owner_key key = {
      .tgid = bpf_get_current_pid_tgid() >> 32,
      .owner = owner_slot >> 16,
  };
  __u32 *base = bpf_map_lookup_elem(&pair_owners, &key);
  if (!base) return -1;
  const __u32 local = owner_slot & 0xffff;
  if (local >= max_slots) return -1;
  return *base + local;
}

/* One call paired by the BEAM (capture.h, "Pairing in the BEAM"): no per-process state, no
 * strings; a lookup of the record and the histograms. A global function, verified once for
 * both programs below. */
__attribute__((noinline)) int pair_record(__u32 owner_slot, __u32 how_tails, __u64 wall_ns,
                                          __u64 cpu_ns) {
  const long found = pair_slot(owner_slot);
  if (found < 0) return 0; /* another capture's record */
  const __u32 slot = found;
  const __u32 how = how_tails & 3;
  const __u32 tails = how_tails >> 2;
  bump(CAPTURE_MATCHED);
  if (how == PAIR_HOW_RETURN) {
    record_sample(slot, CAPTURE_WALL, wall_ns);
    record_sample(slot, CAPTURE_CPU, cpu_ns);
  } else {
    count_end(slot, how == PAIR_HOW_EXCEPTION ? END_EXCEPTION : END_EXIT);
  }
  if (tails) {
    struct slot_counters *c = bpf_map_lookup_elem(&slot_counters, &slot);
    if (c) c->tail_calls += tails;
  }
  return 0;
}

/* orion__call: one probe per call. */
SEC("usdt")
int orion_pair_call(struct pt_regs *ctx) {
  long args[4];

  bump(CAPTURE_EVENTS);
  if (orion_usdt_args(ctx, args, 4) != 0) {
    bump(CAPTURE_READ_ERRORS);
    return 0;
  }
  return pair_record((__u32)args[0], (__u32)args[1], (__u64)args[2], (__u64)args[3]);
}

/* orion__calls (patch 0010): up to PAIR_BATCH calls per probe, read at once from the
 * scheduler thread's batch; each counts as one event, as with orion__call. */
SEC("usdt")
int orion_pair_calls(struct pt_regs *ctx) {
  long args[2];
  const __u32 zero = 0;

  if (orion_usdt_args(ctx, args, 2) != 0) {
    bump(CAPTURE_READ_ERRORS);
    return 0;
  }
  const __u32 n = (__u32)args[1];
  if (n == 0 || n > PAIR_BATCH) {
    bump(CAPTURE_READ_ERRORS);
    return 0;
  }
  struct pair_batch *b = bpf_map_lookup_elem(&batch_buf, &zero);
  if (!b) return 0;
  if (bpf_probe_read_user(b->call, n * sizeof(struct pair_call), (const void *)args[0]) != 0) {
    bump(CAPTURE_READ_ERRORS);
    return 0;
  }
  bump_by(CAPTURE_EVENTS, n);
  for (__u32 i = 0; i < PAIR_BATCH; i++) {
    if (i >= n) break;
    const struct pair_call *c = &b->call[i];
    pair_record(c->owner_slot, c->how_tails, c->wall_ns, c->cpu_ns);
  }
  return 0;
}

/* The name the BEAM gave one of its slots (fired once per function, before its first call
 * ends): the userspace reads it here even if the BEAM is gone by then. */
SEC("usdt")
int ORION_USDT2(orion_pair_function, int, owner_slot, const char *, mfa) {
  const long found = pair_slot((__u32)owner_slot);
  if (found < 0) return 0;
  const __u32 slot = found;
  char *name = bpf_map_lookup_elem(&slot_names, &slot);
  if (name && bpf_probe_read_user_str(name, CAPTURE_MFA_LEN, mfa) <= 0) {
    bump(CAPTURE_READ_ERRORS);
  }
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
