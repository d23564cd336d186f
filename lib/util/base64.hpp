#pragma once
// Base64 (RFC 4648, with padding), for a proxy's Basic credentials.

#include <string>
#include <string_view>

namespace isync::util {

std::string base64_encode(std::string_view bytes);

}  // namespace isync::util
