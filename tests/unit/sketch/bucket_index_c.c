/* Compiles sketch/bucket_index.h as plain C, the way tracer/orion_tracer_nif.c uses it inside
 * the BEAM (tracer mode counts latencies there), so that bucket_index_test.cc checks this build
 * of the index against the oracle too, at every boundary. */
#include "sketch/bucket_index.h"

int orion_bucket_index_c(unsigned long long ns) { return orion_bucket_index(ns); }

int orion_bucket_exact_index_c(unsigned long long ns) { return orion_bucket_exact_index(ns); }
