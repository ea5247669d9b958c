// Folding the kernel's latency histogram into a sketch, with no added error.
//
// The BPF programs count latencies in ORION_BUCKET_COUNT slots (sketch/bucket_index.h); slot i
// is sketch bin i of IndexMapping::Kernel(), except ORION_BUCKET_ZERO_SLOT, which counts zero
// latencies, and ORION_BUCKET_SATURATED_SLOT, which also counts every latency >= 2^44 ns (its
// values are reported as the bucket's representative value, about 4.8 hours).
#pragma once

#include <cstdint>
#include <span>

#include "base/status.h"
#include "sketch/ddsketch.h"

namespace orion::sketch {

// Adds one interval's slot counts (summed over CPUs; slots.size() == ORION_BUCKET_COUNT) to a
// sketch with the kernel's mapping.
Status FoldKernelHistogram(std::span<const uint64_t> slots, CountSketch& sketch);

}  // namespace orion::sketch
