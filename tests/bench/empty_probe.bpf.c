// SPDX-License-Identifier: GPL-2.0
// The floor for the kernel side of a probe hit: a USDT program that does nothing.
// tests/bench/probe_floor attaches it to the probes `orion capture` uses, so that a benchmark
// can compare orion's programs with the cost of the trap alone (docs/performance.md).
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>  // libbpf's USDT attach needs its spec maps in the object

SEC("usdt")
int empty_probe(struct pt_regs* ctx) {
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
