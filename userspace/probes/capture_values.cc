#include "userspace/probes/capture_values.h"

#include <algorithm>
#include <unordered_map>

namespace orion::probes {
namespace {

Status SketchDelta(const sketch::CountSketch& prev, const sketch::CountSketch& cur,
                   sketch::CountSketch& out) {
  if (!(prev.mapping() == cur.mapping())) {
    return InvalidArgument("the reads have different index mappings");
  }
  if (cur.zero_count() < prev.zero_count()) {
    return InvalidArgument("a zero count went down between two reads of one source");
  }
  Status status;
  cur.positive_store().for_each([&](int index, uint64_t count) {
    const uint64_t before = prev.positive_store().count_at(index);
    if (count < before) {
      status = InvalidArgument("bin ", index, " went down from ", before, " to ", count,
                               " between two reads of one source");
      return;
    }
    if (count > before) out.add_bucket_counts(index, count - before);
  });
  RETURN_IF_ERROR(status);
  prev.positive_store().for_each([&](int index, uint64_t count) {
    if (count > 0 && cur.positive_store().count_at(index) == 0) {
      status = InvalidArgument("bin ", index, " emptied between two reads of one source");
    }
  });
  RETURN_IF_ERROR(status);
  out.add_zero_count(cur.zero_count() - prev.zero_count());
  if (!out.empty()) {
    const double lo = out.positive_store().empty() ? 0.0
                                                   : out.mapping().value(out.positive_store().min_index());
    const double hi = out.positive_store().empty() ? 0.0
                                                   : out.mapping().value(out.positive_store().max_index());
    out.set_summary(std::max(0.0, cur.sum() - prev.sum()), out.zero_count() > 0 ? 0.0 : lo, hi);
  }
  return OkStatus();
}

}  // namespace

StatusOr<FunctionStats> FunctionStatsDelta(const FunctionStats& prev, const FunctionStats& cur) {
  FunctionStats out;
  out.mfa = cur.mfa;
  RETURN_IF_ERROR(SketchDelta(prev.wall, cur.wall, out.wall).WithContext(cur.mfa + " (wall)"));
  RETURN_IF_ERROR(SketchDelta(prev.cpu, cur.cpu, out.cpu).WithContext(cur.mfa + " (on-CPU)"));
  if (cur.exceptions < prev.exceptions || cur.tail_calls < prev.tail_calls ||
      cur.exits < prev.exits) {
    return InvalidArgument(cur.mfa, ": a counter went down between two reads of one source");
  }
  out.exceptions = cur.exceptions - prev.exceptions;
  out.tail_calls = cur.tail_calls - prev.tail_calls;
  out.exits = cur.exits - prev.exits;
  return out;
}

StatusOr<std::vector<FunctionStats>> FunctionsDelta(const std::vector<FunctionStats>& prev,
                                                    const std::vector<FunctionStats>& cur) {
  std::unordered_map<std::string, const FunctionStats*> before;
  for (const FunctionStats& f : prev) before.emplace(f.mfa, &f);
  std::vector<FunctionStats> out;
  for (const FunctionStats& f : cur) {
    const auto it = before.find(f.mfa);
    if (it == before.end()) {
      if (!f.wall.empty() || !f.cpu.empty() || f.exceptions || f.exits || f.tail_calls) {
        out.push_back(f);
      }
      continue;
    }
    ASSIGN_OR_RETURN(FunctionStats delta, FunctionStatsDelta(*it->second, f));
    if (!delta.wall.empty() || !delta.cpu.empty() || delta.exceptions || delta.exits ||
        delta.tail_calls) {
      out.push_back(std::move(delta));
    }
  }
  return out;
}

namespace {
uint64_t Minus(uint64_t a, uint64_t b) { return a >= b ? a - b : 0; }
}  // namespace

LostCounters LostDelta(const LostCounters& prev, const LostCounters& cur) {
  return {.frames_evicted = Minus(cur.frames_evicted, prev.frames_evicted),
          .depth_overflow = Minus(cur.depth_overflow, prev.depth_overflow),
          .functions_over_limit = Minus(cur.functions_over_limit, prev.functions_over_limit),
          .mfa_truncated = Minus(cur.mfa_truncated, prev.mfa_truncated),
          .read_errors = Minus(cur.read_errors, prev.read_errors),
          .recursion_misses = Minus(cur.recursion_misses, prev.recursion_misses),
          .hash_collisions = Minus(cur.hash_collisions, prev.hash_collisions)};
}

uint64_t LostTotal(const LostCounters& l) {
  return l.frames_evicted + l.depth_overflow + l.functions_over_limit + l.mfa_truncated +
         l.read_errors + l.recursion_misses + l.hash_collisions;
}

}  // namespace orion::probes
