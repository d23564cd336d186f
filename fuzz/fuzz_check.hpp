#pragma once
// Invariant checks for the fuzz targets. A broken invariant prints what broke
// and the value that broke it, then aborts, so libFuzzer saves the input as a
// crash exactly as it would for a sanitizer report.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace isync::fuzz {

[[noreturn]] inline void invariant_broken(std::string_view what, std::string_view detail) {
    std::fprintf(stderr, "\n==== fuzz invariant broken: %.*s\n     %.*s\n", static_cast<int>(what.size()), what.data(),
                 static_cast<int>(detail.size()), detail.data());
    std::abort();
}

// `detail` is only built when the check fails: the targets run it millions of times.
template <class Detail>
void check(bool ok, std::string_view what, Detail&& detail) {
    if (!ok) invariant_broken(what, detail());
}

inline void check(bool ok, std::string_view what) {
    if (!ok) invariant_broken(what, "");
}

// Printable, with control and non-ASCII bytes escaped, for messages.
inline std::string printable(std::string_view bytes) {
    std::string out;
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f && c != '\\') {
            out.push_back(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", u);
            out += hex;
        }
    }
    return out;
}

// Consumes the first 8 bytes of the input as a little-endian integer, when
// there are 8; the rest of the input stays for the text under test.
inline bool take_int64(const std::uint8_t*& data, std::size_t& size, std::int64_t& out) {
    if (size < 8) return false;
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | data[i];
    out = static_cast<std::int64_t>(v);
    data += 8;
    size -= 8;
    return true;
}

// Maps any integer onto [lo, hi] without overflow (hi - lo must fit in uint64).
inline std::int64_t clamp_into(std::int64_t v, std::int64_t lo, std::int64_t hi) {
    const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) + 1;
    return lo + static_cast<std::int64_t>(static_cast<std::uint64_t>(v) % span);
}

}  // namespace isync::fuzz
