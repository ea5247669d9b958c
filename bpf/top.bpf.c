// SPDX-License-Identifier: GPL-2.0
/* top: processes, mailboxes, GC, ports and scheduler threads of one BEAM, from its runtime
 * probes and the kernel's sched_switch. The contract with userspace, and the design, are in
 * top.h; what the numbers mean in docs/top.md. */
#include "vmlinux.h"  // first: the kernel's types, which libbpf's headers use

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "top.h"

/* Set by the loader before load: the BEAM's OS pid (sched_switch filters on it). */
const volatile __u32 target_tgid = 0;
/* Set by the loader before load: queue lengths come from orion__mailbox (patch 0011), fired by
 * the senders, instead of message__queued (top.h, "messages"). */
const volatile __u32 sender_queue_len = 0;
/* How the BEAM's pid terms hold number and serial (top.h, "Keys"). */
const volatile struct top_pid_layout pid_layout = TOP_PID_LAYOUT_OTP24;

/* The queue high-water mark window (top.h); userspace increments it at each refresh. */
__u32 epoch = 0;

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384); /* set by the loader */
  __type(key, __u64);         /* top_proc_key() */
  __type(value, struct top_proc);
} procs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096); /* set by the loader */
  __type(key, __u64);        /* the process's key */
  __type(value, struct top_gc_hist);
} gc_hists SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 1024); /* set by the loader */
  __type(key, __u64);        /* the port number N of "#Port<0.N>" */
  __type(value, struct top_port);
} ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024); /* set by the loader */
  __type(key, __u32);        /* OS thread id */
  __type(value, struct top_thread);
} threads SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TOP_COUNTER_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/* Zeroed values to insert from (they do not fit on the BPF stack). */
struct scratch {
  struct top_proc proc;
  struct top_gc_hist gc;
  struct top_port port;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} zeroes SEC(".maps");

static __always_inline void bump(__u32 counter) {
  __u64* v = bpf_map_lookup_elem(&counters, &counter);
  if (v) *v += 1; /* per-CPU; uprobe and tracepoint programs run with preemption disabled */
}

/* Parses the numbers of "<A.B.C>" (a pid) or "#Port<A.B>" (a port) read into `buf`; returns
 * how many it found (at most 3). The BEAM passes "" or "-raw-" where there is no process. */
static __always_inline int parse_term_numbers(const char buf[TOP_PID_LEN], __u64 numbers[3]) {
  __u64 a = 0, b = 0, c = 0;
  int n = 0, in_number = 0;
  for (int i = 0; i < TOP_PID_LEN; i++) {
    char ch = buf[i];
    if (ch == 0 || ch == '>') break;
    if (ch < '0' || ch > '9') {
      in_number = 0;
      continue;
    }
    if (!in_number) {
      in_number = 1;
      n++;
    }
    __u64 digit = ch - '0';
    if (n == 1) {
      a = a * 10 + digit;
    } else if (n == 2) {
      b = b * 10 + digit;
    } else if (n == 3) {
      c = c * 10 + digit;
    } else {
      return 0;
    }
  }
  numbers[0] = a;
  numbers[1] = b;
  numbers[2] = c;
  return n;
}

/* The key of the local process whose pid string `user_str` points to; -1 if it is not one. */
static __always_inline int read_proc_key(const void* user_str, __u64* key) {
  char buf[TOP_PID_LEN];
  if (bpf_probe_read_user_str(buf, sizeof(buf), user_str) <= 0) {
    bump(TOP_READ_ERRORS);
    return -1;
  }
  if (buf[0] != '<') return -1;
  __u64 numbers[3] = {};
  if (parse_term_numbers(buf, numbers) != 3 || numbers[0] != 0) return -1;
  *key = top_proc_key(numbers[1], numbers[2]);
  return 0;
}

static __always_inline struct top_proc* get_or_create_proc(__u64 key) {
  struct top_proc* p = bpf_map_lookup_elem(&procs, &key);
  if (p) return p;
  __u32 zero = 0;
  struct scratch* init = bpf_map_lookup_elem(&zeroes, &zero);
  if (!init) return 0;
  if (bpf_map_update_elem(&procs, &key, &init->proc, BPF_NOEXIST) == 0) bump(TOP_PROCS_INSERTED);
  return bpf_map_lookup_elem(&procs, &key);
}

/* The process named by a probe's string argument, created on first sight. */
static __always_inline struct top_proc* proc_of(const void* user_str, __u64* key_out) {
  __u64 key;
  if (read_proc_key(user_str, &key) != 0) return 0;
  if (key_out) *key_out = key;
  return get_or_create_proc(key);
}

static __always_inline struct top_thread* current_thread(__u32* tid_out) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  *tid_out = tid;
  return bpf_map_lookup_elem(&threads, &tid);
}

/* Ends the run of the process the thread holds: its time, and the reductions it used (0 when
 * not known), go to the process and thread. */
static __always_inline void end_run(struct top_thread* t, __u64 now, __u64 reds) {
  if (!t->running) return;
  __u64 held = now > t->run_start_ns ? now - t->run_start_ns : 0;
  __u64 offcpu = t->run_offcpu_ns < held ? t->run_offcpu_ns : held;
  t->busy_ns += held;
  struct top_proc* p = bpf_map_lookup_elem(&procs, &t->running_key);
  if (p) {
    p->cpu_ns += held;
    p->offcpu_ns += offcpu;
    p->reds += reds;
  }
  t->running = 0;
  t->run_offcpu_ns = 0;
  t->offcpu_since_ns = 0;
}

/* ---- sched: erts_schedule(esdp, p, calls) entry and return, process__spawn, exit ---- */

/* Entry of erts_schedule(esdp, p, calls): the thread's process (if any) stops running, after
 * using `calls` reductions in this run (reds_used, in both flavors' process_main). */
SEC("uprobe")
int BPF_KPROBE(orion_top_sched_out, void* esdp, void* proc, int calls) /* BPF_UPROBE: >= 1.2 */ {
  bump(TOP_EVENTS);
  __u32 tid;
  struct top_thread* t = current_thread(&tid);
  if (t) end_run(t, bpf_ktime_get_ns(), calls > 0 ? calls : 0);
  return 0;
}

/* The key of the local process whose pid term (the emulator's Eterm) is `id`; -1 if it is not
 * a local pid (top.h, "Keys"). */
static __always_inline int pid_term_key(__u64 id, __u64* key) {
  if ((id & TOP_TAG_MASK) != TOP_TAG_PID) return -1;
  struct top_pid_layout layout = pid_layout;
  *key = top_pid_term_key(&layout, id);
  return 0;
}

/* Return of erts_schedule(): the process it returns runs on this thread from now on. */
SEC("uretprobe")
int BPF_KRETPROBE(orion_top_sched_in, void* proc) {
  bump(TOP_EVENTS);
  if (!proc) return 0;
  __u64 id = 0;
  if (bpf_probe_read_user(&id, sizeof(id), proc) != 0) { /* Process.common.id */
    bump(TOP_READ_ERRORS);
    return 0;
  }
  __u64 key;
  if (pid_term_key(id, &key) != 0) return 0;
  struct top_proc* p = get_or_create_proc(key);
  if (!p) return 0;
  __u64 now = bpf_ktime_get_ns();
  p->sched_count += 1;

  __u32 tid;
  struct top_thread* t = current_thread(&tid);
  if (!t) {
    struct top_thread fresh = {};
    if (bpf_map_update_elem(&threads, &tid, &fresh, BPF_NOEXIST) != 0) {
      bump(TOP_THREADS_FULL);
      return 0;
    }
    t = bpf_map_lookup_elem(&threads, &tid);
    if (!t) return 0;
  }
  end_run(t, now, 0); /* an entry we did not see (attached in between) */
  t->running_key = key;
  t->running = 1;
  t->run_start_ns = now;
  t->runs += 1;
  return 0;
}

/* process__spawn(p, mfa): fired by the parent; p is the new process. */
SEC("usdt")
int BPF_USDT(orion_top_spawn, void* pid_str, void* mfa_str) {
  bump(TOP_EVENTS);
  struct top_proc* p = proc_of(pid_str, 0);
  if (p) bpf_probe_read_user_str(p->initial, TOP_MFA_LEN, mfa_str);
  return 0;
}

SEC("usdt")
int BPF_USDT(orion_top_exit, void* pid_str) {
  bump(TOP_EVENTS);
  __u64 key;
  if (read_proc_key(pid_str, &key) != 0) return 0;
  struct top_proc* p = bpf_map_lookup_elem(&procs, &key);
  if (p) p->flags |= TOP_PROC_EXITED;
  return 0;
}

/* ---- offcpu: the OS scheduler switching the BEAM's scheduler threads ---- */

SEC("tp_btf/sched_switch")
int BPF_PROG(orion_top_switch, bool preempt, struct task_struct* prev, struct task_struct* next) {
  const __u32 tgid = target_tgid;
  if (prev->tgid != tgid && next->tgid != tgid) return 0;
  __u64 now = bpf_ktime_get_ns();
  if (prev->tgid == tgid) {
    __u32 tid = prev->pid;
    struct top_thread* t = bpf_map_lookup_elem(&threads, &tid);
    if (t && !t->running) t->idle_offcpu_since_ns = now;
    if (t && t->running) {
      t->offcpu_since_ns = now;
      /* Still runnable (TASK_RUNNING): the OS preempted it, usually on return to user mode,
       * where `preempt` is false; otherwise it sleeps in the kernel. */
      if (preempt || prev->__state == 0) {
        t->preempted += 1;
      } else {
        t->blocked += 1;
      }
    }
  }
  if (next->tgid == tgid) {
    __u32 tid = next->pid;
    struct top_thread* t = bpf_map_lookup_elem(&threads, &tid);
    if (t && t->offcpu_since_ns) {
      __u64 d = now - t->offcpu_since_ns;
      t->run_offcpu_ns += d;
      t->offcpu_ns += d;
      t->offcpu_since_ns = 0;
    }
    if (t && t->idle_offcpu_since_ns) {
      t->idle_offcpu_ns += now - t->idle_offcpu_since_ns;
      t->idle_offcpu_since_ns = 0;
    }
  }
  return 0;
}

/* ---- messages ---- */

/* message__send(sender, receiver, size, ...), message__send__remote(sender, node, receiver,
 * size, ...): the cookie says where the size is. */
SEC("usdt")
int BPF_USDT(orion_top_send, void* sender_str) {
  bump(TOP_EVENTS);
  struct top_proc* p = proc_of(sender_str, 0);
  if (!p) return 0;
  long size = 0;
  bpf_usdt_arg(ctx, bpf_usdt_cookie(ctx), &size);
  p->msgs_out += 1;
  if (size > 0) p->words_out += size;
  return 0;
}

static __always_inline void note_queue_len(struct top_proc* p, __u64 len) {
  const __u32 e = epoch;
  const __u32 slot = e & 1;
  p->queue_len = len;
  if (p->qmax_epoch[slot] != e) {
    p->qmax_epoch[slot] = e;
    p->qmax[slot] = len;
  } else if (len > p->qmax[slot]) {
    p->qmax[slot] = len;
  }
}

/* message__queued(receiver, size, queue_len, ...): fired by the receiver when it takes a
 * message from its outer signal queue into its message queue; queue_len counts it. */
SEC("usdt")
int BPF_USDT(orion_top_queued, void* receiver_str, long size, long queue_len) {
  bump(TOP_EVENTS);
  struct top_proc* p = proc_of(receiver_str, 0);
  if (!p) return 0;
  p->msgs_in += 1;
  note_queue_len(p, queue_len > 0 ? queue_len : 0);
  return 0;
}

/* orion__mailbox(receiver, queue_len, n) (patch 0011): fired by the sender once n messages are
 * in the receiver's queues; queue_len counts every message in them, the new ones included,
 * whether or not the receiver ever looks. Senders on several CPUs can update one receiver at
 * once: the counts are atomic, and the length's last writer wins. */
SEC("usdt")
int BPF_USDT(orion_top_mailbox, __u64 receiver, long queue_len, unsigned int n) {
  bump(TOP_EVENTS);
  __u64 key;
  if (pid_term_key(receiver, &key) != 0) return 0;
  struct top_proc* p = get_or_create_proc(key);
  if (!p) return 0;
  __sync_fetch_and_add(&p->msgs_in, n);
  note_queue_len(p, queue_len > 0 ? queue_len : 0);
  return 0;
}

/* message__receive(receiver, size, queue_len, ...): queue_len is the length of the receiver's
 * private queue (inner and middle parts), the message taken still in it; messages still in its
 * outer queue are not. With orion__mailbox, the length the senders last reported minus the message taken
 * can be larger, and the larger is kept: both are lower bounds of the real length (the
 * senders' one misses only messages no sender reported: those the receiver made from signals,
 * such as 'DOWN' and alias messages; the next send corrects it). */
SEC("usdt")
int BPF_USDT(orion_top_receive, void* receiver_str, long size, long queue_len) {
  bump(TOP_EVENTS);
  struct top_proc* p = proc_of(receiver_str, 0);
  if (!p) return 0;
  p->msgs_received += 1;
  __u64 len = queue_len > 0 ? queue_len - 1 : 0;
  if (sender_queue_len && p->queue_len > len + 1) len = p->queue_len - 1;
  note_queue_len(p, len);
  return 0;
}

/* ---- gc: gc_minor/major__start(p, need), gc_minor/major__end(p, reclaimed) ---- */

SEC("usdt")
int BPF_USDT(orion_top_gc_start, void* pid_str) {
  bump(TOP_EVENTS);
  struct top_proc* p = proc_of(pid_str, 0);
  if (p) p->gc_start_ns = bpf_ktime_get_ns();
  return 0;
}

static __always_inline void record_gc_pause(__u64 key, __u64 ns) {
  struct top_gc_hist* h = bpf_map_lookup_elem(&gc_hists, &key);
  if (!h) {
    __u32 zero = 0;
    struct scratch* init = bpf_map_lookup_elem(&zeroes, &zero);
    if (!init) return;
    if (bpf_map_update_elem(&gc_hists, &key, &init->gc, BPF_NOEXIST) == 0) {
      bump(TOP_GC_HISTS_INSERTED);
    }
    h = bpf_map_lookup_elem(&gc_hists, &key);
    if (!h) return;
  }
  int i = (orion_bucket_index(ns) >> TOP_GC_SCALE_SHIFT) - TOP_GC_FIRST_INDEX;
  if (i < 0) i = 0;
  if (i >= TOP_GC_BUCKETS) i = TOP_GC_BUCKETS - 1;
  h->buckets[i] += 1;
}

SEC("usdt")
int BPF_USDT(orion_top_gc_end, void* pid_str) {
  __u64 key = 0;
  bump(TOP_EVENTS);
  struct top_proc* p = proc_of(pid_str, &key);
  if (!p) return 0;
  if (bpf_usdt_cookie(ctx) == TOP_GC_MAJOR) {
    p->gc_major += 1;
  } else {
    p->gc_minor += 1;
  }
  if (!p->gc_start_ns) {
    bump(TOP_GC_UNPAIRED);
    return 0;
  }
  __u64 now = bpf_ktime_get_ns();
  __u64 ns = now - p->gc_start_ns;
  p->gc_start_ns = 0;
  p->gc_ns += ns;
  if (ns > p->gc_max_ns) p->gc_max_ns = ns;
  record_gc_pause(key, ns);
  return 0;
}

/* process__heap_grow(p, old_size, new_size), sizes in words. */
SEC("usdt")
int BPF_USDT(orion_top_heap_grow, void* pid_str, long old_size, long new_size) {
  bump(TOP_EVENTS);
  struct top_proc* p = proc_of(pid_str, 0);
  if (!p) return 0;
  p->heap_grows += 1;
  p->heap_words = new_size > 0 ? new_size : 0;
  return 0;
}

/* ---- ports ---- */

static __always_inline struct top_port* port_of(const void* port_str, const void* name_str) {
  char buf[TOP_PID_LEN];
  if (bpf_probe_read_user_str(buf, sizeof(buf), port_str) <= 0) {
    bump(TOP_READ_ERRORS);
    return 0;
  }
  __u64 numbers[3] = {};
  if (buf[0] != '#' || parse_term_numbers(buf, numbers) != 2 || numbers[0] != 0) return 0;
  __u64 key = numbers[1];
  struct top_port* p = bpf_map_lookup_elem(&ports, &key);
  if (p) return p;
  __u32 zero = 0;
  struct scratch* init = bpf_map_lookup_elem(&zeroes, &zero);
  if (!init) return 0;
  bpf_probe_read_user_str(init->port.name, TOP_NAME_LEN, name_str);
  if (bpf_map_update_elem(&ports, &key, &init->port, BPF_NOEXIST) == 0) bump(TOP_PORTS_INSERTED);
  __builtin_memset(init->port.name, 0, TOP_NAME_LEN);
  return bpf_map_lookup_elem(&ports, &key);
}

/* port__command(process, port, port_name, command_type): "command", "close" or "connect". */
SEC("usdt")
int BPF_USDT(orion_top_port_command, void* proc_str, void* port_str, void* name_str,
             void* type_str) {
  bump(TOP_EVENTS);
  struct top_port* p = port_of(port_str, name_str);
  if (!p) return 0;
  char type[8] = {};
  bpf_probe_read_user_str(type, sizeof(type), type_str);
  if (type[0] == 'c' && type[1] == 'o' && type[2] == 'm') {
    __sync_fetch_and_add(&p->commands, 1);
  } else {
    __sync_fetch_and_add(&p->controls, 1);
  }
  return 0;
}

/* driver__output(process, port, port_name, bytes), driver__outputv(...): the bytes handed to
 * the driver's output callback. */
SEC("usdt")
int BPF_USDT(orion_top_output, void* proc_str, void* port_str, void* name_str, long bytes) {
  bump(TOP_EVENTS);
  struct top_port* p = port_of(port_str, name_str);
  if (!p) return 0;
  __sync_fetch_and_add(&p->outputs, 1);
  if (bytes > 0) __sync_fetch_and_add(&p->bytes_out, bytes);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
