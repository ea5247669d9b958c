// Base64 (RFC 4648, standard alphabet, padded) for sketches passed as text: the `sketch` field
// of `orion sketch summarize --json`, and files that `orion sketch show|merge` read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace orion::sketch {

std::string Base64Encode(std::span<const uint8_t> bytes);

// Decodes base64 text; ASCII whitespace is ignored and padding is optional.  Errors give the
// byte offset in the text.
StatusOr<std::vector<uint8_t>> Base64Decode(std::string_view text);

// True if text is non-empty and made only of the base64 alphabet, '=' and ASCII whitespace.
bool LooksLikeBase64(std::string_view text);

}  // namespace orion::sketch
