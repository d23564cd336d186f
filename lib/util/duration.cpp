#include "util/duration.hpp"

#include <array>
#include <charconv>
#include <limits>

namespace isync::util {
namespace {

struct unit {
    std::string_view suffix;
    long long millis;
};

// Longest suffix first so that "ms" is not read as "m" followed by junk.
constexpr std::array<unit, 5> units{{
    {"ms", 1},
    {"s", 1000},
    {"m", 60'000},
    {"h", 3'600'000},
    {"d", 86'400'000},
}};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits == text.size()) return std::nullopt;
    long long value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
    if (ec != std::errc{} || ptr != text.data() + digits) return std::nullopt;
    std::string_view suffix = text.substr(digits);
    for (const auto& u : units) {
        if (suffix == u.suffix) {
            if (value > std::numeric_limits<long long>::max() / u.millis) return std::nullopt;
            return std::chrono::milliseconds(value * u.millis);
        }
    }
    return std::nullopt;
}

std::string format_duration(std::chrono::milliseconds d) {
    const long long ms = d.count();
    if (ms == 0) return "0s";
    for (auto it = units.rbegin(); it != units.rend(); ++it) {
        if (ms % it->millis == 0) return std::to_string(ms / it->millis) + std::string(it->suffix);
    }
    return std::to_string(ms) + "ms";
}

}  // namespace isync::util
