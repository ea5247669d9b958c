/* Compiles sketch/bucket_index.h the way bpf/ does (clang -target bpf -O2, after vmlinux.h,
 * no libc), for the ctests sketch.bucket_index_bpf_compile[_standalone].  The functions are
 * global so that code is generated for them. */
#ifdef ORION_WITH_VMLINUX
#include "vmlinux.h"
#endif
#include "sketch/bucket_index.h"

int orion_bucket_index_probe(unsigned long long ns) { return orion_bucket_index(ns); }

int orion_bucket_exact_index_probe(unsigned long long ns) { return orion_bucket_exact_index(ns); }

int orion_bucket_is_saturated_probe(int slot) { return orion_bucket_is_saturated(slot); }
