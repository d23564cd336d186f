#include "util/timestamp.hpp"

#include "util/duration.hpp"

#include <array>
#include <cstdio>

namespace isync::util {
namespace {

// Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar
// and free of time zones, unlike timegm/mktime.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil {
    std::int64_t year;
    unsigned month, day;
};

constexpr civil civil_from_days(std::int64_t z) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {y + (m <= 2), m, d};
}

constexpr bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

constexpr unsigned days_in_month(std::int64_t y, unsigned m) {
    constexpr std::array<unsigned, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

// Reads exactly `n` decimal digits at `pos`; advances `pos`.
bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    pos += n;
    out = v;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos >= s.size() || s[pos] != c) return false;
    ++pos;
    return true;
}

constexpr std::array<std::string_view, 7> weekdays{"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

}  // namespace

std::optional<std::int64_t> parse_iso8601_ms(std::string_view s) {
    std::size_t pos = 0;
    int year, month, day, hour, minute, second;
    if (!read_digits(s, pos, 4, year) || !expect(s, pos, '-') || !read_digits(s, pos, 2, month) ||
        !expect(s, pos, '-') || !read_digits(s, pos, 2, day))
        return std::nullopt;
    if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) return std::nullopt;
    ++pos;
    if (!read_digits(s, pos, 2, hour) || !expect(s, pos, ':') || !read_digits(s, pos, 2, minute) ||
        !expect(s, pos, ':') || !read_digits(s, pos, 2, second))
        return std::nullopt;
    if (month < 1 || month > 12 || day < 1 || static_cast<unsigned>(day) > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 60)
        return std::nullopt;
    int millis = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::size_t digits = 0;
        int scale = 100;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (digits < 3) {
                millis += (s[pos] - '0') * scale;
                scale /= 10;
            }
            ++digits;
            ++pos;
        }
        if (digits == 0 || digits > 9) return std::nullopt;
    }
    int offset_minutes = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        const int sign = s[pos] == '-' ? -1 : 1;
        ++pos;
        int oh, om;
        if (!read_digits(s, pos, 2, oh)) return std::nullopt;
        if (pos < s.size() && s[pos] == ':') ++pos;
        if (!read_digits(s, pos, 2, om) || oh > 23 || om > 59) return std::nullopt;
        offset_minutes = sign * (oh * 60 + om);
    } else {
        return std::nullopt;  // a time without a zone is ambiguous: refuse it
    }
    if (pos != s.size()) return std::nullopt;
    if (second == 60) second = 59;  // leap second: clamp rather than roll into the next minute
    const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    const std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60LL;
    const std::int64_t ms = secs * 1000 + millis;
    // An offset can carry 0000-01-01 or 9999-12-31 out of four-digit years,
    // which the stored text form cannot hold (nor sort correctly).
    constexpr std::int64_t min_ms = -62167219200000;  // 0000-01-01T00:00:00.000Z
    constexpr std::int64_t max_ms = 253402300799999;  // 9999-12-31T23:59:59.999Z
    if (ms < min_ms || ms > max_ms) return std::nullopt;
    return ms;
}

std::string format_iso8601_ms(std::int64_t epoch_ms) {
    const std::int64_t days = epoch_ms >= 0 ? epoch_ms / 86'400'000 : -((-epoch_ms + 86'399'999) / 86'400'000);
    const std::int64_t rem = epoch_ms - days * 86'400'000;
    const civil c = civil_from_days(days);
    // Hand-formatted: this runs for every timestamp of every incident, and
    // snprintf was a fifth of the page parser's time.
    std::string out(24, '0');
    auto put = [&out](std::size_t at, std::int64_t value, int width) {
        for (int i = width - 1; i >= 0; --i, value /= 10)
            out[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
    };
    if (c.year < 0 || c.year > 9999) {
        char buf[64];  // room for any int64 field GCC can imagine (-Wformat-truncation)
        std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(c.year),
                      c.month, c.day, static_cast<long long>(rem / 3'600'000),
                      static_cast<long long>(rem / 60'000 % 60), static_cast<long long>(rem / 1000 % 60),
                      static_cast<long long>(rem % 1000));
        return buf;
    }
    put(0, c.year, 4);
    out[4] = '-';
    put(5, c.month, 2);
    out[7] = '-';
    put(8, c.day, 2);
    out[10] = 'T';
    put(11, rem / 3'600'000, 2);
    out[13] = ':';
    put(14, rem / 60'000 % 60, 2);
    out[16] = ':';
    put(17, rem / 1000 % 60, 2);
    out[19] = '.';
    put(20, rem % 1000, 3);
    out[23] = 'Z';
    return out;
}

std::optional<std::string> normalize_iso8601(std::string_view text) {
    auto ms = parse_iso8601_ms(text);
    if (!ms) return std::nullopt;
    return format_iso8601_ms(*ms);
}

std::optional<std::int64_t> parse_http_date_ms(std::string_view s) {
    // IMF-fixdate only: "Sun, 06 Nov 1994 08:49:37 GMT" (29 characters).
    if (s.size() != 29 || s.substr(3, 2) != ", " || s.substr(25) != " GMT") return std::nullopt;
    bool weekday_ok = false;
    for (auto w : weekdays) weekday_ok |= s.substr(0, 3) == w;
    if (!weekday_ok) return std::nullopt;
    std::size_t pos = 5;
    int day, year, hour, minute, second;
    if (!read_digits(s, pos, 2, day) || !expect(s, pos, ' ')) return std::nullopt;
    int month = 0;
    for (std::size_t i = 0; i < months.size(); ++i)
        if (s.substr(pos, 3) == months[i]) month = static_cast<int>(i) + 1;
    if (month == 0) return std::nullopt;
    pos += 3;
    if (!expect(s, pos, ' ') || !read_digits(s, pos, 4, year) || !expect(s, pos, ' ') ||
        !read_digits(s, pos, 2, hour) || !expect(s, pos, ':') || !read_digits(s, pos, 2, minute) ||
        !expect(s, pos, ':') || !read_digits(s, pos, 2, second))
        return std::nullopt;
    if (day < 1 || static_cast<unsigned>(day) > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60)
        return std::nullopt;
    const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    return (days * 86400 + hour * 3600 + minute * 60 + second) * 1000;
}

std::string format_http_date(std::int64_t epoch_ms) {
    // Floor, not truncate: instants before 1970 must not print negative fields.
    const std::int64_t secs = epoch_ms >= 0 ? epoch_ms / 1000 : -((-epoch_ms + 999) / 1000);
    const std::int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    const std::int64_t rem = secs - days * 86400;
    const civil c = civil_from_days(days);
    char buf[64];  // room for any int64 field GCC can imagine (-Wformat-truncation)
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04lld %02lld:%02lld:%02lld GMT",
                  std::string(weekdays[static_cast<std::size_t>(((days % 7) + 7) % 7)]).c_str(), c.day,
                  std::string(months[c.month - 1]).c_str(), static_cast<long long>(c.year),
                  static_cast<long long>(rem / 3600), static_cast<long long>(rem / 60 % 60),
                  static_cast<long long>(rem % 60));
    return buf;
}

std::optional<std::int64_t> parse_time_or_ago(std::string_view text, std::int64_t now_ms) {
    if (auto at = parse_iso8601_ms(text)) return at;
    if (auto back = parse_duration(text)) return now_ms - back->count();
    return std::nullopt;
}

}  // namespace isync::util
