// The floating-point index mappings of DataDog's sketches-go/-java, shared shape:
//
//   index(v)       = floor(log(v) * multiplier + indexOffset)
//   lower_bound(i) = log^-1((i - indexOffset) / multiplier)
//   value(i)       = lower_bound(i) * (1 + relative_accuracy)
//
// where `log` is the exact or an interpolated logarithm (the Log policy: NaturalLog,
// LinearLog2, CubicLog2) and multiplier = 1 / (exact log of gamma in the policy's base).
// A Log policy provides:
//   Log(v), Inverse(x)       the (approximate) logarithm and its exact inverse
//   BaseLog(v), BaseExp(x)   the exact logarithm and exponential in the same base
//   kCorrectingExponent      gamma^kCorrectingExponent is the base of the exact logarithm that
//                            has this mapping's accuracy (1 when Log is exact)
//   kInterpolation           its protobuf name
//   DefaultIndexOffset(g)    the offset DataDog's libraries give a mapping they build from an
//                            accuracy (non-zero for the linear one only)  Same
// definitions, constructors and protobuf meaning of (gamma, indexOffset) as sketches-go/-java,
// so a sketch built here and one built there put a value in the same bin.  Like those libraries,
// index() truncates toward zero and subtracts one below zero, so an exact negative integer
// x gives x - 1 (floor gives x): kept for bin compatibility.
//
// The kernel's mapping is not one of these: see ExponentialMapping.
#pragma once

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>

#include "base/status.h"
#include "sketch/mapping/interpolation.h"

namespace orion::sketch {

template <typename Log>
class LogLikeMapping {
 public:
  // The mapping with the fewest bins that guarantees `relative_accuracy` (0 < a < 1), with the
  // same gamma and index offset as the DataDog libraries give it.
  static StatusOr<LogLikeMapping> WithRelativeAccuracy(double relative_accuracy) {
    if (!(relative_accuracy > 0 && relative_accuracy < 1)) {
      return InvalidArgument("relative accuracy must be between 0 and 1, not ", relative_accuracy);
    }
    const double exact_log_gamma = (1 + relative_accuracy) / (1 - relative_accuracy);
    const double gamma = std::pow(exact_log_gamma, 1 / Log::kCorrectingExponent);
    return LogLikeMapping(gamma, Log::DefaultIndexOffset(gamma));
  }

  // The mapping a protobuf IndexMapping{gamma, indexOffset} describes.
  static StatusOr<LogLikeMapping> WithGamma(double gamma, double index_offset) {
    if (!(gamma > 1) || !std::isfinite(gamma)) {
      return InvalidArgument("gamma must be a finite number greater than 1, not ", gamma);
    }
    if (!std::isfinite(index_offset)) {
      return InvalidArgument("index offset must be finite, not ", index_offset);
    }
    return LogLikeMapping(gamma, index_offset);
  }

  // The bin of v, for zero_threshold() < v <= max_indexable_value().
  int index(double v) const {
    const double x = Log::Log(v) * multiplier_ + index_offset_;
    return x >= 0 ? static_cast<int>(x) : static_cast<int>(x) - 1;
  }
  double lower_bound(int index) const {
    return Log::Inverse((index - index_offset_) / multiplier_);
  }
  double value(int index) const { return lower_bound(index) * (1 + relative_accuracy_); }

  double gamma() const { return gamma_; }
  double index_offset() const { return index_offset_; }
  Interpolation interpolation() const { return Log::kInterpolation; }
  double relative_accuracy() const { return relative_accuracy_; }
  // Magnitudes at or below this go to the zero count (DataDog's minIndexableValue).
  double zero_threshold() const { return zero_threshold_; }
  // Larger magnitudes are rejected: their index would not fit in 32 bits or value() overflow.
  double max_indexable_value() const { return max_indexable_value_; }

  // Same mapping up to a relative 1e-12 on gamma and the offset (sketches-go's tolerance).
  bool operator==(const LogLikeMapping& other) const {
    return WithinTolerance(gamma_, other.gamma_) &&
           WithinTolerance(index_offset_, other.index_offset_);
  }

 private:
  LogLikeMapping(double gamma, double index_offset)
      : gamma_(gamma),
        index_offset_(index_offset),
        multiplier_(1 / Log::BaseLog(gamma)),
        relative_accuracy_(1 - 2 / (1 + AdjustedGamma(gamma))) {
    constexpr double kExpOverflow = 7.094361393031e+02;  // where exp() overflows, as in sketches-go
    const double adjusted = AdjustedGamma(gamma);
    zero_threshold_ =
        std::max(Log::BaseExp((INT_MIN - index_offset_) / multiplier_ + 1), DBL_MIN * adjusted);
    max_indexable_value_ = std::min(Log::BaseExp((INT_MAX - index_offset_) / multiplier_ - 1),
                                    std::exp(kExpOverflow) / (2 * adjusted) * (adjusted + 1));
  }

  // The base of the exact logarithm that gives this mapping's accuracy.
  static double AdjustedGamma(double gamma) { return std::pow(gamma, Log::kCorrectingExponent); }

  static bool WithinTolerance(double x, double y) {
    constexpr double kTolerance = 1e-12;
    if (x == 0 || y == 0) return std::abs(x) <= kTolerance && std::abs(y) <= kTolerance;
    return std::abs(x - y) <= kTolerance * std::max(std::abs(x), std::abs(y));
  }

  double gamma_;
  double index_offset_;
  double multiplier_;
  double relative_accuracy_;
  double zero_threshold_ = 0;
  double max_indexable_value_ = 0;
};

}  // namespace orion::sketch
