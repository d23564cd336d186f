// parse_retry_after and the 429 path of classify_response over arbitrary
// header values (the whole input is the value, so seeds stay plain text). Each
// value is tried against several wall clocks: the epoch, the tests' 1994
// clock, the end of year 9999, and, when the value is a date, that very
// instant and one millisecond either side of it.
//
// Checks: the delay is never negative; it is exactly the delta-seconds or the
// distance to the date (0 when the date is past); a 429 always waits, never
// longer than max_delay; the log message has no control characters.

#include "api/outcome.hpp"
#include "fuzz_check.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using isync::fuzz::check;
using isync::fuzz::printable;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t last_ms = 253402300799999;    // 9999-12-31T23:59:59.999Z
constexpr std::int64_t tests_now_ms = 784111777000;  // Sun, 06 Nov 1994 08:49:37 GMT, as in the tests
constexpr std::chrono::milliseconds max_delay = 60s;

std::string_view trim_spaces(std::string_view v) {
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    return v;
}

bool all_digits(std::string_view v) {
    return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The delay the header asks for, computed the slow, obvious way.
std::optional<std::int64_t> expected_ms(std::string_view value, std::int64_t now_ms) {
    const std::string_view v = trim_spaces(value);
    if (all_digits(v)) {
        std::size_t first = v.find_first_not_of('0');
        const std::string_view significant = first == std::string_view::npos ? "0" : v.substr(first);
        constexpr std::int64_t max = std::chrono::milliseconds::max().count();
        if (significant.size() > 16) return max;  // > 10^16 s overflows milliseconds
        const std::int64_t seconds = std::stoll(std::string(significant));
        return seconds > max / 1000 ? max : seconds * 1000;
    }
    if (const auto when = isync::util::parse_http_date_ms(v)) return std::max<std::int64_t>(0, *when - now_ms);
    return std::nullopt;
}

void check_at(std::string_view value, std::int64_t now_ms) {
    const auto delay = isync::api::parse_retry_after(value, now_ms);
    check(!delay || delay->count() >= 0, "Retry-After is never negative", [&] {
        return printable(value) + " at now_ms " + std::to_string(now_ms) + " -> " + std::to_string(delay->count());
    });
    const auto expected = expected_ms(value, now_ms);
    check(delay.has_value() == expected.has_value(), "Retry-After is accepted exactly in its two forms",
          [&] { return printable(value); });
    check(!delay || delay->count() == *expected, "Retry-After is the delta-seconds or the distance to the date", [&] {
        return printable(value) + " at now_ms " + std::to_string(now_ms) + ": got " + std::to_string(delay->count()) +
               " ms, want " + std::to_string(*expected);
    });

    const auto o = isync::api::classify_response(429, "", value, now_ms, max_delay);
    check(o.kind == isync::api::outcome_kind::rate_limited, "429 is rate_limited");
    check(o.retry_after && *o.retry_after >= 0ms && *o.retry_after <= max_delay, "a 429 waits, at most max_delay",
          [&] { return printable(value); });
    check(std::none_of(o.message.begin(), o.message.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
          "the log message carries no control characters from the header", [&] { return printable(o.message); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view value(reinterpret_cast<const char*>(data), size);
    for (const std::int64_t now_ms : {std::int64_t{0}, tests_now_ms, last_ms}) check_at(value, now_ms);
    if (const auto when = isync::util::parse_http_date_ms(trim_spaces(value))) {
        for (const std::int64_t d : {-1, 0, 1}) {
            const std::int64_t now_ms = *when + d;
            if (now_ms >= 0 && now_ms <= last_ms) check_at(value, now_ms);
        }
    }
    return 0;
}
