#include "util/hash.hpp"

#define XXH_INLINE_ALL  // header only: nothing to link
#include <xxhash.h>

namespace isync::util {

std::int64_t hash_bytes(std::string_view bytes) noexcept {
    return static_cast<std::int64_t>(XXH3_64bits(bytes.data(), bytes.size()));
}

}  // namespace isync::util
