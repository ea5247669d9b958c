// SPDX-License-Identifier: GPL-2.0
/* Counts hits per USDT probe; see probe_count.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "probe_count.h"

/* Set through the skeleton's rodata before load: the MFA to count exactly. */
const volatile char target_mfa[PROBE_COUNT_MFA_LEN] = {};
const volatile int target_mfa_len = 0; /* without the NUL; 0 = no target */

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, PROBE_COUNT_MAX_PROBES);
  __type(key, __u32);
  __type(value, __u64);
} hits SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, PROBE_COUNT_MAX_PROBES);
  __type(key, __u32);
  __type(value, __u64);
} target_hits SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, char[PROBE_COUNT_MFA_LEN]);
} scratch SEC(".maps");

static __always_inline int mfa_is_target(const char *user_mfa) {
  __u32 zero = 0;
  char *buf = bpf_map_lookup_elem(&scratch, &zero);
  if (!buf) return 0;
  long n = bpf_probe_read_user_str(buf, PROBE_COUNT_MFA_LEN, user_mfa);
  if (n != target_mfa_len + 1) return 0;
  for (int i = 0; i < PROBE_COUNT_MFA_LEN; i++) {
    if (i >= target_mfa_len) return 1;
    if (buf[i] != target_mfa[i]) return 0;
  }
  return 1;
}

SEC("usdt")
int count_probe(struct pt_regs *ctx) {
  __u64 cookie = bpf_usdt_cookie(ctx);
  __u32 slot = cookie & PROBE_COUNT_SLOT_MASK;
  __u64 *n = bpf_map_lookup_elem(&hits, &slot);
  if (n) *n += 1;

  if (target_mfa_len > 0 && (cookie & PROBE_COUNT_ARG1_IS_MFA)) {
    long mfa = 0;
    if (bpf_usdt_arg(ctx, 1, &mfa) == 0 && mfa_is_target((const char *)mfa)) {
      __u64 *t = bpf_map_lookup_elem(&target_hits, &slot);
      if (t) *t += 1;
    }
  }
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
