// IndexMapping: which bin a value falls in, and which value a bin stands for.
//
// One value type over the four mappings, so that a sketch can hold a mapping chosen at run time
// (built here, or read from a protobuf):
//   IndexMapping::Kernel()                    the kernel's exact base-2 mapping, gamma = 2^(1/64)
//   IndexMapping::Logarithmic(0.01)           DataDog's mappings for a relative accuracy
//   IndexMapping::LinearlyInterpolated(0.01)
//   IndexMapping::CubicallyInterpolated(0.01)
//   IndexMapping::FromProto(gamma, offset, interpolation)
// Every mapping guarantees |value(index(v)) - v| <= relative_accuracy() * v for
// zero_threshold() < v <= max_indexable_value().
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "base/status.h"
#include "sketch/mapping/cubically_interpolated_mapping.h"
#include "sketch/mapping/exponential_mapping.h"
#include "sketch/mapping/interpolation.h"
#include "sketch/mapping/linearly_interpolated_mapping.h"
#include "sketch/mapping/logarithmic_mapping.h"

namespace orion::sketch {

class IndexMapping {
 public:
  // The mapping of the kernel's buckets (sketch/bucket_index.h): bins are kernel bucket indexes.
  static IndexMapping Kernel() { return IndexMapping(ExponentialMapping()); }
  static StatusOr<IndexMapping> Logarithmic(double relative_accuracy);
  static StatusOr<IndexMapping> LinearlyInterpolated(double relative_accuracy);
  static StatusOr<IndexMapping> CubicallyInterpolated(double relative_accuracy);

  // The mapping a protobuf IndexMapping describes.  gamma = 2^(1/64) (to 1e-12), indexOffset 0,
  // interpolation NONE is the kernel's mapping, exact: never recomputed as floor(log * multiplier).
  static StatusOr<IndexMapping> FromProto(double gamma, double index_offset,
                                          Interpolation interpolation);

  // The bin of v, for zero_threshold() < v <= max_indexable_value().
  int index(double v) const {
    if (const auto* kernel = std::get_if<ExponentialMapping>(&mapping_)) return kernel->index(v);
    return std::visit([v](const auto& m) { return m.index(v); }, mapping_);
  }
  // The bin of an integer v >= 1: exact integer arithmetic for the kernel's mapping.
  int index(uint64_t v) const {
    if (const auto* kernel = std::get_if<ExponentialMapping>(&mapping_)) return kernel->index(v);
    return index(static_cast<double>(v));
  }
  double value(int index) const;
  double lower_bound(int index) const;

  double gamma() const;
  double index_offset() const;
  Interpolation interpolation() const;
  double relative_accuracy() const;
  // Magnitudes at or below this count as zero.
  double zero_threshold() const { return zero_threshold_; }
  // Larger magnitudes cannot be tracked.
  double max_indexable_value() const { return max_indexable_value_; }
  bool is_kernel() const { return std::holds_alternative<ExponentialMapping>(mapping_); }

  // Same kind and, for DataDog's mappings, same gamma and offset up to 1e-12: sketches whose
  // mappings are equal have the same bins and can be merged.
  bool operator==(const IndexMapping& other) const;

  // "kernel (exponential, gamma 2^(1/64)), relative accuracy 0.54%"
  std::string Describe() const;

 private:
  using Variant = std::variant<ExponentialMapping, LogarithmicMapping, LinearlyInterpolatedMapping,
                               CubicallyInterpolatedMapping>;
  explicit IndexMapping(Variant mapping);

  Variant mapping_;
  // Cached from mapping_: DDSketch::add reads them for every value.
  double zero_threshold_;
  double max_indexable_value_;
};

}  // namespace orion::sketch
