#include "sketch/mapping/interpolation.h"

namespace orion::sketch {

std::string_view InterpolationName(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::kNone:
      return "NONE";
    case Interpolation::kLinear:
      return "LINEAR";
    case Interpolation::kQuadratic:
      return "QUADRATIC";
    case Interpolation::kCubic:
      return "CUBIC";
  }
  return "UNKNOWN";
}

}  // namespace orion::sketch
