// Reads one of the kernel's per-CPU latency histograms (struct hist, bpf/capture.h) and folds
// it into a DDSketch with its exact summary: shared by probes mode (capture) and tracer mode.
#pragma once

#include "base/status.h"
#include "sketch/ddsketch.h"

namespace orion::probes {

// Sums `key`'s per-CPU histograms in `map_fd` into `out` (cleared first): bins through the
// shared bucket mapping, count/sum/min/max exact. An empty histogram leaves `out` empty.
Status ReadKernelHistogram(int map_fd, const void* key, sketch::CountSketch* out);

}  // namespace orion::probes
