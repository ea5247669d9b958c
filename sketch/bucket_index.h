/*
 * The kernel's latency bucket index: one definition for bpf/ and sketch/.
 *
 * A latency of v nanoseconds (v >= 1) falls in bucket
 *
 *     index(v) = 64*e + j,   e = floor(log2 v),   j = #{ k in 1..63 : v >= 2^(e + k/64) }
 *
 * that is index(v) = floor(log_gamma v) with gamma = 2^(1/64), computed exactly with integer
 * operations only.  Bucket i holds the values in [gamma^i, gamma^(i+1)): lower-inclusive, the
 * rule of DataDog's sketches-go/-java (`index = floor(log_gamma(v))`).  Its representative value
 * 2*gamma^(i+1)/(1+gamma) is within (gamma-1)/(gamma+1) = 0.54 % of every value in it.  These
 * are the buckets of OpenTelemetry exponential histograms at scale 6 and of Prometheus native
 * histograms at schema 6, except that those are upper-inclusive: a power of two 2^e (the only
 * integers on a boundary) is bucket 64*e here and bucket 64*e - 1 there (see docs/sketch.md).
 *
 * How: normalise v so that its leading one is bit 63, m = v << (63 - e), then compare m with
 * orion_bucket_boundaries[k] = ceil(2^(63 + k/64)); because m is an integer,
 * m >= ceil(2^(63 + k/64))  <=>  v >= 2^(e + k/64), exactly.  The table is generated with exact
 * integer arithmetic by sketch/tools/gen_bucket_table.py and proved in
 * tests/unit/sketch/bucket_index_test.cc.  Never recompute an index as floor(log(v)*multiplier)
 * in floating point: 1/log(2^(1/64)) rounds to 63.99999999999991, which puts every exact
 * boundary (powers of two among them) one bucket low.
 *
 * The kernel's histogram has ORION_BUCKET_COUNT slots, and orion_bucket_index() gives the slot:
 *   - values >= 2^44 ns (about 4.9 hours) saturate into ORION_BUCKET_SATURATED_SLOT, the last one,
 *     so that slot stands for [gamma^2815, infinity): orion_bucket_is_saturated() tells userspace;
 *   - the value 0 has no index (log 0 is undefined) and goes to the zero bucket.  Its slot is
 *     ORION_BUCKET_ZERO_SLOT = 1: sketch indexes 1..63 lie strictly between 1 ns and 2 ns, where no
 *     integer is, so slot 1 is never an integer's bucket and the kernel needs neither a branch nor
 *     an extra slot.  Userspace folds slot 1 into the sketch's zero count.
 * Every other slot is the sketch index itself.
 *
 * Plain C for `clang -target bpf -O2` next to the kernel's vmlinux.h: no includes, no libc, no
 * __builtin_clzll (the BPF backend has no count-leading-zeros), no loops (two fixed 6-step binary
 * searches), everything inline.  In C++ the functions are constexpr.
 */
#ifndef ORION_SKETCH_BUCKET_INDEX_H_
#define ORION_SKETCH_BUCKET_INDEX_H_

#define ORION_BUCKET_SUBBUCKET_BITS 6
#define ORION_BUCKET_SUBBUCKETS (1 << ORION_BUCKET_SUBBUCKET_BITS) /* 64: gamma = 2^(1/64) */
#define ORION_BUCKET_MAX_EXPONENT 44                               /* slots cover 1 ns .. 2^44 ns */
#define ORION_BUCKET_COUNT (ORION_BUCKET_SUBBUCKETS * ORION_BUCKET_MAX_EXPONENT) /* 2816 */
#define ORION_BUCKET_SATURATED_SLOT (ORION_BUCKET_COUNT - 1)
#define ORION_BUCKET_ZERO_SLOT 1

#if defined(__cplusplus)
#define ORION_BUCKET_FN static constexpr inline
#define ORION_BUCKET_TABLE static constexpr
#elif defined(__bpf__) || defined(__BPF__)
#define ORION_BUCKET_FN static inline __attribute__((always_inline))
#define ORION_BUCKET_TABLE static const
#else
#define ORION_BUCKET_FN static inline
#define ORION_BUCKET_TABLE static const
#endif

/* orion_bucket_boundaries[k] = ceil(2^(63 + k/64)): sketch/tools/gen_bucket_table.py */
ORION_BUCKET_TABLE unsigned long long orion_bucket_boundaries[ORION_BUCKET_SUBBUCKETS] = {
    0x8000000000000000ULL, 0x8164d1f3bc030774ULL, 0x82cd8698ac2ba1d8ULL, 0x843a28c3acde4047ULL,
    0x85aac367cc487b15ULL, 0x871f61969e8d1011ULL, 0x88980e8092da8528ULL, 0x8a14d575496efd9bULL,
    0x8b95c1e3ea8bd6e7ULL, 0x8d1adf5b7e5ba9e6ULL, 0x8ea4398b45cd53c1ULL, 0x9031dc431466b1ddULL,
    0x91c3d373ab11c337ULL, 0x935a2b2f13e6e92cULL, 0x94f4efa8fef70962ULL, 0x96942d3720185a01ULL,
    0x9837f0518db8a970ULL, 0x99e0459320b7fa65ULL, 0x9b8d39b9d54e5539ULL, 0x9d3ed9a72cffb751ULL,
    0x9ef5326091a111aeULL, 0xa0b0510fb9714fc3ULL, 0xa27043030c496819ULL, 0xa43515ae09e6809fULL,
    0xa5fed6a9b15138ebULL, 0xa7cd93b4e965356aULL, 0xa9a15ab4ea7c0ef9ULL, 0xab7a39b5a93ed338ULL,
    0xad583eea42a14ac7ULL, 0xaf3b78ad690a4375ULL, 0xb123f581d2ac2590ULL, 0xb311c412a911248aULL,
    0xb504f333f9de6485ULL, 0xb6fd91e328d17792ULL, 0xb8fbaf4762fb9eeaULL, 0xbaff5ab2133e45fcULL,
    0xbd08a39f580c36bfULL, 0xbf1799b67a731083ULL, 0xc12c4cca66709457ULL, 0xc346ccda24976408ULL,
    0xc5672a115506dadeULL, 0xc78d74c8abb9b15dULL, 0xc9b9bd866e2f27a3ULL, 0xcbec14fef2727c5dULL,
    0xce248c151f8480e4ULL, 0xd06333daef2b2595ULL, 0xd2a81d91f12ae45bULL, 0xd4f35aabcfedfa20ULL,
    0xd744fccad69d6af5ULL, 0xd99d15c278afd7b6ULL, 0xdbfbb797daf23756ULL, 0xde60f4825e0e9124ULL,
    0xe0ccdeec2a94e112ULL, 0xe33f8972be8a5a52ULL, 0xe5b906e77c8348a9ULL, 0xe8396a503c4bdc69ULL,
    0xeac0c6e7dd24392fULL, 0xed4f301ed9942b85ULL, 0xefe4b99bdcdaf5ccULL, 0xf281773c59ffb13aULL,
    0xf5257d152486cc2dULL, 0xf7d0df730ad13bb9ULL, 0xfa83b2db722a033bULL, 0xfd3e0c0cf486c175ULL,
};

/* floor(log2 v) for v >= 1 (0 for v = 0), by a 6-step binary search on the leading bit. */
ORION_BUCKET_FN int orion_bucket_leading_bit(unsigned long long v) {
  int e = 0;
  if (v >> 32) {
    v >>= 32;
    e += 32;
  }
  if (v >> 16) {
    v >>= 16;
    e += 16;
  }
  if (v >> 8) {
    v >>= 8;
    e += 8;
  }
  if (v >> 4) {
    v >>= 4;
    e += 4;
  }
  if (v >> 2) {
    v >>= 2;
    e += 2;
  }
  if (v >> 1) e += 1;
  return e;
}

/* For m with bit 63 set: the number of k in 1..63 with m >= orion_bucket_boundaries[k], by a
 * 6-step binary search (the table is increasing and orion_bucket_boundaries[0] = 2^63 <= m). */
ORION_BUCKET_FN int orion_bucket_subindex(unsigned long long m) {
  int j = 0;
  if (m >= orion_bucket_boundaries[j + 32]) j += 32;
  if (m >= orion_bucket_boundaries[j + 16]) j += 16;
  if (m >= orion_bucket_boundaries[j + 8]) j += 8;
  if (m >= orion_bucket_boundaries[j + 4]) j += 4;
  if (m >= orion_bucket_boundaries[j + 2]) j += 2;
  if (m >= orion_bucket_boundaries[j + 1]) j += 1;
  return j;
}

/* The sketch index floor(log_gamma ns) of ns >= 1, unsaturated: 0 .. 4095. */
ORION_BUCKET_FN int orion_bucket_exact_index(unsigned long long ns) {
  int e = orion_bucket_leading_bit(ns);
  return (e << ORION_BUCKET_SUBBUCKET_BITS) + orion_bucket_subindex(ns << (63 - e));
}

/* The kernel histogram slot of a latency: 0 .. ORION_BUCKET_COUNT - 1.  It is the sketch index,
 * except that 0 ns goes to ORION_BUCKET_ZERO_SLOT and values >= 2^44 ns saturate into
 * ORION_BUCKET_SATURATED_SLOT. */
ORION_BUCKET_FN int orion_bucket_index(unsigned long long ns) {
  if (ns == 0) return ORION_BUCKET_ZERO_SLOT;
  if (ns >> ORION_BUCKET_MAX_EXPONENT) return ORION_BUCKET_SATURATED_SLOT;
  return orion_bucket_exact_index(ns);
}

/* True for the slot that also holds every latency past the histogram's range (>= 2^44 ns). */
ORION_BUCKET_FN int orion_bucket_is_saturated(int slot) {
  return slot == ORION_BUCKET_SATURATED_SLOT;
}

/* True for the slot that counts zero latencies (sketch index 1 is never an integer's bucket). */
ORION_BUCKET_FN int orion_bucket_is_zero(int slot) {
  return slot == ORION_BUCKET_ZERO_SLOT;
}

#endif /* ORION_SKETCH_BUCKET_INDEX_H_ */
