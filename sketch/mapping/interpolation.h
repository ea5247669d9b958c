// How a mapping approximates the logarithm: the `interpolation` field of DataDog's protobuf
// IndexMapping (ddsketch.proto), with the same numbers.
#pragma once

#include <string_view>

namespace orion::sketch {

enum class Interpolation {
  kNone = 0,       // exact logarithm (LogarithmicMapping, and the kernel's ExponentialMapping)
  kLinear = 1,     // LinearlyInterpolatedMapping
  kQuadratic = 2,  // defined by the protobuf, implemented by no DataDog library we read from
  kCubic = 3,      // CubicallyInterpolatedMapping
};

// "NONE", "LINEAR", "QUADRATIC", "CUBIC": the protobuf's names.
std::string_view InterpolationName(Interpolation interpolation);

}  // namespace orion::sketch
