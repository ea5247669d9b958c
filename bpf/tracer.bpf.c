// SPDX-License-Identifier: GPL-2.0
/* tracer: per-function latency histograms from the probes of Orion's erl_tracer NIF.
 * The contract with userspace, and the pairing, are in tracer.h; the semantics in
 * docs/tracer.md. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "tracer.h"
#include "usdt_fast.h"

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct tracer_proc_key);
  __type(value, struct tracer_proc);
} tracer_procs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TRACER_MAX_TARGETS);
  __type(key, __u32);
  __type(value, struct hist);
} tracer_hists SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TRACER_MAX_TARGETS);
  __type(key, __u32);
  __type(value, struct slot_counters);
} tracer_target_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TRACER_COUNTER_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} tracer_counters SEC(".maps");

/* A zeroed tracer_proc to insert from (it does not fit on the BPF stack). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct tracer_proc);
} tracer_proc_init SEC(".maps");

static __always_inline void bump(__u32 counter) {
  __u64* v = bpf_map_lookup_elem(&tracer_counters, &counter);
  if (v) *v += 1; /* per-CPU, and uprobe programs run with preemption disabled */
}

static __always_inline void make_key(struct tracer_proc_key* key, __u64 pid) {
  key->tgid = bpf_get_current_pid_tgid() >> 32;
  key->pad = 0;
  key->pid = pid;
}

static __always_inline void record_sample(__u32 target, __u64 ns) {
  struct hist* h = bpf_map_lookup_elem(&tracer_hists, &target);
  if (!h) return;
  int idx = orion_bucket_index(ns);
  if (idx < 0 || idx >= CAPTURE_HIST_SLOTS) return;
  h->slots[idx] += 1;
  if (h->stats.count == 0 || ns < h->stats.min_ns) h->stats.min_ns = ns;
  if (ns > h->stats.max_ns) h->stats.max_ns = ns;
  h->stats.count += 1;
  h->stats.sum_ns += ns;
}

SEC("usdt")
int ORION_USDT2(tracer_call, __u64, pid, __u32, target) {
  __u64 now = bpf_ktime_get_ns();
  bump(TRACER_CALLS);
  if (target >= TRACER_MAX_TARGETS) {
    bump(TRACER_BAD_TARGET);
    return 0;
  }
  struct tracer_proc_key key;
  make_key(&key, pid);
  struct tracer_proc* p = bpf_map_lookup_elem(&tracer_procs, &key);
  if (!p) {
    __u32 zero = 0;
    struct tracer_proc* init = bpf_map_lookup_elem(&tracer_proc_init, &zero);
    if (!init) return 0;
    init->depth = 0;
    if (bpf_map_update_elem(&tracer_procs, &key, init, BPF_NOEXIST) == 0) {
      bump(TRACER_PROCS_INSERTED);
    }
    p = bpf_map_lookup_elem(&tracer_procs, &key);
    if (!p) return 0;
  }
  __u32 d = p->depth;
  if (d < TRACER_MAX_FRAMES) {
    struct tracer_frame* f = &p->frames[d & (TRACER_MAX_FRAMES - 1)];
    f->start_ns = now;
    f->target = target;
  } else {
    bump(TRACER_DEPTH_OVERFLOW);
  }
  p->depth = d + 1;
  return 0;
}

/* Ends the innermost call in flight of `pid`: a latency sample if it returned, an exception
 * count if it raised. */
static __always_inline int end_call(__u64 pid, __u32 target, int returned) {
  __u64 now = bpf_ktime_get_ns();
  struct tracer_proc_key key;
  make_key(&key, pid);
  struct tracer_proc* p = bpf_map_lookup_elem(&tracer_procs, &key);
  if (!p || p->depth == 0) {
    bump(TRACER_UNPAIRED); /* a call made before the capture attached */
    return 0;
  }
  __u32 d = p->depth - 1;
  p->depth = d;
  if (d < TRACER_MAX_FRAMES) {
    struct tracer_frame* f = &p->frames[d & (TRACER_MAX_FRAMES - 1)];
    if (f->target != target) {
      bump(TRACER_UNPAIRED);
    } else if (returned) {
      record_sample(target, now - f->start_ns);
    } else {
      struct slot_counters* c = bpf_map_lookup_elem(&tracer_target_counters, &target);
      if (c) c->exceptions += 1;
    }
  }
  return 0;
}

SEC("usdt")
int ORION_USDT2(tracer_return_from, __u64, pid, __u32, target) {
  bump(TRACER_RETURNS);
  return end_call(pid, target, 1);
}

SEC("usdt")
int ORION_USDT2(tracer_exception_from, __u64, pid, __u32, target) {
  bump(TRACER_EXCEPTIONS);
  return end_call(pid, target, 0);
}

char LICENSE[] SEC("license") = "GPL";
