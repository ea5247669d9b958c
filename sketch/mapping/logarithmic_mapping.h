// The memory-optimal mapping: the exact natural logarithm (protobuf interpolation NONE).
// Index computation costs a log(); see LogLikeMapping for the definitions.
#pragma once

#include <cmath>

#include "sketch/mapping/log_like_mapping.h"

namespace orion::sketch {

struct NaturalLog {
  static constexpr Interpolation kInterpolation = Interpolation::kNone;
  static constexpr double kCorrectingExponent = 1;
  static double Log(double v) { return std::log(v); }
  static double Inverse(double x) { return std::exp(x); }
  static double BaseLog(double v) { return std::log(v); }
  static double BaseExp(double x) { return std::exp(x); }
  static double DefaultIndexOffset(double) { return 0; }
};

using LogarithmicMapping = LogLikeMapping<NaturalLog>;

}  // namespace orion::sketch
