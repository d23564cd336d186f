#pragma once
// Small text helpers shared by every layer: trimming, case-insensitive
// comparison, joining, and making untrusted text safe to show in a message.

#include <cstddef>
#include <string>
#include <string_view>

namespace isync::util {

// `text` without leading and trailing ASCII whitespace (space, \t, \r, \n, \v, \f).
std::string_view trim(std::string_view text);

// ASCII case-insensitive equality (header names, tokens of a header value).
bool iequals(std::string_view a, std::string_view b);

// `text` with A-Z lowered; other bytes unchanged.
std::string to_lower(std::string_view text);

// The parts with `separator` between them; parts may be any string-like values.
template <class Range>
std::string join(const Range& parts, std::string_view separator) {
    std::string out;
    bool first = true;
    for (const auto& part : parts) {
        if (!first) out += separator;
        out += std::string_view(part);
        first = false;
    }
    return out;
}

// Text from outside (a config value, a server's body or header) made safe for
// one log line: control bytes and DEL become \xNN, at most `limit` bytes are
// kept (never splitting a UTF-8 sequence), and "..." marks a cut. With
// `ascii_only`, every byte outside printable ASCII becomes \xNN too (raw bytes
// of a malformed body, where a window may start mid-character).
std::string printable(std::string_view text, std::size_t limit = std::string_view::npos, bool ascii_only = false);

}  // namespace isync::util
