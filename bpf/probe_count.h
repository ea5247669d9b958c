/* Shared by probe_count.bpf.c and userspace/probes/probe_counter.cc.
 *
 * probe_count: one BPF program attached to any number of the BEAM's USDT probes, counting
 * hits per probe (the USDT cookie carries the probe's slot) and, for function-entry
 * probes, hits whose MFA string equals one target MFA.  It answers "do the probes fire,
 * and how often" without any of capture's machinery: the set-up check, the demo before a
 * capture, and the first integration test.
 */
#ifndef ORION_BPF_PROBE_COUNT_H
#define ORION_BPF_PROBE_COUNT_H

#define PROBE_COUNT_MAX_PROBES 64
#define PROBE_COUNT_MFA_LEN 128

/* USDT cookie: the slot in the counts array, plus flags. */
#define PROBE_COUNT_SLOT_MASK 0xffffull
#define PROBE_COUNT_ARG1_IS_MFA (1ull << 16) /* arg1 is an "m:f/a" string */

#endif /* ORION_BPF_PROBE_COUNT_H */
