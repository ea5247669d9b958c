// Latency histograms in the buckets of sketch/bucket_index.h (count, sum, min, max and
// ORION_BUCKET_COUNT slots), summed over CPUs or threads and folded into a DDSketch with their
// exact summary: probes mode reads them from the kernel's per-CPU maps (struct hist,
// bpf/capture.h), tracer mode from its NIF's per-thread blocks (tracer/orion_tracer_area.h).
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "sketch/ddsketch.h"

namespace orion::probes {

class HistogramSum {
 public:
  HistogramSum();
  // Adds one CPU's or thread's histogram; `slots` has ORION_BUCKET_COUNT entries. An empty one
  // (count 0) adds nothing.
  void Add(uint64_t count, uint64_t sum_ns, uint64_t min_ns, uint64_t max_ns,
           const uint64_t* slots);
  // Clears `out`, then folds the sum into it: bins through the shared bucket mapping,
  // count/sum/min/max exact. Nothing added leaves `out` empty.
  Status FoldInto(sketch::CountSketch* out) const;

 private:
  std::vector<uint64_t> slots_;
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t min_ns_ = 0;
  uint64_t max_ns_ = 0;
};

// Sums `key`'s per-CPU histograms in `map_fd` into `out` (cleared first).
Status ReadKernelHistogram(int map_fd, const void* key, sketch::CountSketch* out);

}  // namespace orion::probes
