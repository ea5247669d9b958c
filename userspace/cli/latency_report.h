// How latency results look: the terminal table (live and final) and the JSON document of
// `orion capture`, shared by local and daemon captures.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sketch/ddsketch.h"
#include "userspace/probes/capture.h"

namespace orion::cli {

// "850 ns", "12.3 µs", "4.56 ms", "1.23 s".
std::string FormatDuration(double ns);

// {"count", "min_ns", "max_ns", "sum_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns"}; the
// quantiles are the sketch's (within its relative accuracy), the rest exact.
nlohmann::json SummaryJson(const sketch::CountSketch& sketch);

// One entry of "calls": the wall summary, "cpu": the on-CPU summary, "exceptions",
// "tail_calls", "exits", and "sketch": the wall DDSketch as base64 protobuf.
nlohmann::json FunctionJson(const probes::FunctionStats& f);

nlohmann::json LostJson(const probes::LostCounters& lost);

// The table: one line per function with calls, calls/s over `rate_seconds`, p50, p90, p99,
// max, on-CPU p50, exceptions, and a distribution drawn from min to max.
// `previous` (may be null) gives the counts `rate_seconds` ago, for the rates.
std::string RenderTable(const probes::CaptureSnapshot& snap, const probes::CaptureSnapshot* previous,
                        double rate_seconds);

// A sparkline of the sketch's distribution between its min and max on a log scale, `width`
// characters of ▁▂▃▄▅▆▇█.
std::string Sparkline(const sketch::CountSketch& sketch, int width);

// Lines that say what was lost, "" if nothing.
std::string RenderLost(const probes::LostCounters& lost);

}  // namespace orion::cli
