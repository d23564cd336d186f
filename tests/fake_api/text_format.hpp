#pragma once
// Digit formatting without printf: generating a million incidents formats
// ~6 million timestamps and ids, and vfprintf was a fifth of the time.

#include <cstdint>
#include <string>

namespace fake_api {

// The low `digits` nibbles of `value` as lowercase hex, zero-padded.
inline void append_hex(std::string& out, std::uint64_t value, int digits) {
    static constexpr char nibbles[] = "0123456789abcdef";
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += nibbles[(value >> shift) & 15];
}

inline std::string hex(std::uint64_t value, int digits) {
    std::string out;
    out.reserve(static_cast<std::size_t>(digits));
    append_hex(out, value, digits);
    return out;
}

// `value` as exactly `width` decimal digits (zero-padded, high digits dropped).
inline void append_fixed(std::string& out, std::uint64_t value, int width) {
    char digits[20];
    for (int k = width - 1; k >= 0; --k) {
        digits[k] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
    out.append(digits, static_cast<std::size_t>(width));
}

// `YYYY-MM-DDTHH:MM:SS`, then `.sss` when `millis`, for epoch milliseconds
// (years 0000-9999), by Howard Hinnant's civil_from_days.
inline void append_utc(std::string& out, std::int64_t ms, bool millis) {
    std::int64_t days = ms >= 0 ? ms / 86'400'000 : -((-ms + 86'399'999) / 86'400'000);
    const std::int64_t rem = ms - days * 86'400'000;
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const auto doe = static_cast<unsigned>(days - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned day = doy - (153 * mp + 2) / 5 + 1;
    const unsigned month = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2);
    append_fixed(out, static_cast<std::uint64_t>(year), 4);
    out += '-';
    append_fixed(out, month, 2);
    out += '-';
    append_fixed(out, day, 2);
    out += 'T';
    append_fixed(out, static_cast<std::uint64_t>(rem / 3'600'000), 2);
    out += ':';
    append_fixed(out, static_cast<std::uint64_t>(rem / 60'000 % 60), 2);
    out += ':';
    append_fixed(out, static_cast<std::uint64_t>(rem / 1000 % 60), 2);
    if (millis) {
        out += '.';
        append_fixed(out, static_cast<std::uint64_t>(rem % 1000), 3);
    }
}

}  // namespace fake_api
