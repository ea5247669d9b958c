// Arithmetic on capture results that several consumers share: the per-interval delta of two
// cumulative reads of the same source (streams, the console, watches' exports).
#pragma once

#include <vector>

#include "base/status.h"
#include "userspace/probes/capture_types.h"

namespace orion::probes {

// What `cur` measured since `prev`: both cumulative reads of the same source, `prev` earlier.
// Bins subtract exactly; sum is cur's minus prev's; min and max are those of the delta's
// lowest and highest bins (the exact extremes of an interval are not kept). InvalidArgument
// when a count went down (the reads are not of one source).
StatusOr<FunctionStats> FunctionStatsDelta(const FunctionStats& prev, const FunctionStats& cur);

// The same per function, matched by MFA; a function absent from `prev` is new (all of cur).
// Functions with no change are left out.
StatusOr<std::vector<FunctionStats>> FunctionsDelta(const std::vector<FunctionStats>& prev,
                                                    const std::vector<FunctionStats>& cur);

LostCounters LostDelta(const LostCounters& prev, const LostCounters& cur);

// Every counter of `lost` added up (one number for "what could not be measured").
uint64_t LostTotal(const LostCounters& lost);

}  // namespace orion::probes
