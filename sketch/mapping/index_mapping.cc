#include "sketch/mapping/index_mapping.h"

#include <cmath>
#include <sstream>

namespace orion::sketch {
namespace {

bool IsKernelGamma(double gamma) {
  return std::abs(gamma - ExponentialMapping::kGamma) <= 1e-12 * ExponentialMapping::kGamma;
}

std::string_view KindName(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::kNone:
      return "logarithmic";
    case Interpolation::kLinear:
      return "linearly interpolated";
    case Interpolation::kQuadratic:
      return "quadratically interpolated";
    case Interpolation::kCubic:
      return "cubically interpolated";
  }
  return "unknown";
}

}  // namespace

IndexMapping::IndexMapping(Variant mapping)
    : mapping_(std::move(mapping)),
      zero_threshold_(std::visit([](const auto& m) { return m.zero_threshold(); }, mapping_)),
      max_indexable_value_(
          std::visit([](const auto& m) { return m.max_indexable_value(); }, mapping_)) {}

StatusOr<IndexMapping> IndexMapping::Logarithmic(double relative_accuracy) {
  ASSIGN_OR_RETURN(auto mapping, LogarithmicMapping::WithRelativeAccuracy(relative_accuracy));
  return IndexMapping(mapping);
}

StatusOr<IndexMapping> IndexMapping::LinearlyInterpolated(double relative_accuracy) {
  ASSIGN_OR_RETURN(auto mapping,
                   LinearlyInterpolatedMapping::WithRelativeAccuracy(relative_accuracy));
  return IndexMapping(mapping);
}

StatusOr<IndexMapping> IndexMapping::CubicallyInterpolated(double relative_accuracy) {
  ASSIGN_OR_RETURN(auto mapping,
                   CubicallyInterpolatedMapping::WithRelativeAccuracy(relative_accuracy));
  return IndexMapping(mapping);
}

StatusOr<IndexMapping> IndexMapping::FromProto(double gamma, double index_offset,
                                               Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::kNone: {
      if (IsKernelGamma(gamma) && index_offset == 0) return Kernel();
      ASSIGN_OR_RETURN(auto mapping, LogarithmicMapping::WithGamma(gamma, index_offset));
      return IndexMapping(mapping);
    }
    case Interpolation::kLinear: {
      ASSIGN_OR_RETURN(auto mapping, LinearlyInterpolatedMapping::WithGamma(gamma, index_offset));
      return IndexMapping(mapping);
    }
    case Interpolation::kCubic: {
      ASSIGN_OR_RETURN(auto mapping, CubicallyInterpolatedMapping::WithGamma(gamma, index_offset));
      return IndexMapping(mapping);
    }
    case Interpolation::kQuadratic:
      return InvalidArgument("QUADRATIC interpolation is not supported (nor by sketches-go)");
  }
  return InvalidArgument("unknown interpolation ", static_cast<int>(interpolation));
}

double IndexMapping::value(int index) const {
  return std::visit([index](const auto& m) { return m.value(index); }, mapping_);
}

double IndexMapping::lower_bound(int index) const {
  return std::visit([index](const auto& m) { return m.lower_bound(index); }, mapping_);
}

double IndexMapping::gamma() const {
  return std::visit([](const auto& m) { return m.gamma(); }, mapping_);
}

double IndexMapping::index_offset() const {
  return std::visit([](const auto& m) { return m.index_offset(); }, mapping_);
}

Interpolation IndexMapping::interpolation() const {
  return std::visit([](const auto& m) { return m.interpolation(); }, mapping_);
}

double IndexMapping::relative_accuracy() const {
  return std::visit([](const auto& m) { return m.relative_accuracy(); }, mapping_);
}

bool IndexMapping::operator==(const IndexMapping& other) const {
  if (mapping_.index() != other.mapping_.index()) return false;
  return std::visit(
      [&other](const auto& m) {
        using Mapping = std::decay_t<decltype(m)>;
        return m == std::get<Mapping>(other.mapping_);
      },
      mapping_);
}

std::string IndexMapping::Describe() const {
  std::ostringstream out;
  if (is_kernel()) {
    out << "kernel (exponential, gamma 2^(1/64))";
  } else {
    out.precision(17);
    out << KindName(interpolation()) << " (gamma " << gamma() << ", index offset " << index_offset()
        << ")";
  }
  out.precision(4);
  out << ", relative accuracy " << relative_accuracy() * 100 << "%";
  return out.str();
}

}  // namespace orion::sketch
