// The two timestamp grammars the daemon reads from the network: ISO-8601 in
// incident bodies (stored normalised, compared for the watermark) and the
// IMF-fixdate of `Retry-After` and `Date`. Checks, for every input:
//
//   - text that parses re-formats to text that parses to the same instant
//     (format(parse(x)) parses to parse(x)), in the documented shape;
//   - normalize_iso8601 is exactly format(parse(x)), so normalising twice
//     changes nothing;
//   - and, from the first 8 bytes read as epoch ms within years 0000-9999,
//     parse(format(ms)) gives ms back (whole seconds for the HTTP form).

#include "fuzz_check.hpp"
#include "util/timestamp.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using isync::fuzz::check;
using isync::fuzz::printable;
namespace util = isync::util;

namespace {

// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the years four
// digits can write, which format_iso8601_ms documents as its range.
constexpr std::int64_t first_ms = -62167219200000;
constexpr std::int64_t last_ms = 253402300799999;

std::int64_t floor_to_second(std::int64_t ms) { return ms >= 0 ? ms - ms % 1000 : ms - ((ms % 1000) + 1000) % 1000; }

void check_iso_text(std::string_view text) {
    const auto ms = util::parse_iso8601_ms(text);
    const auto normal = util::normalize_iso8601(text);
    check(ms.has_value() == normal.has_value(), "normalize_iso8601 accepts exactly what parse_iso8601_ms accepts",
          [&] { return printable(text); });
    if (!ms) return;
    const std::string formatted = util::format_iso8601_ms(*ms);
    check(*normal == formatted, "normalize_iso8601 is format(parse(x))", [&] { return printable(text); });
    check(util::parse_iso8601_ms(formatted) == ms, "ISO-8601: format(parse(x)) parses to the same ms",
          [&] { return printable(text) + " -> " + std::to_string(*ms) + " ms -> " + printable(formatted); });
    check(formatted.size() == 24 && formatted[10] == 'T' && formatted.back() == 'Z',
          "the stored form is YYYY-MM-DDTHH:MM:SS.sssZ",
          [&] { return printable(text) + " -> " + printable(formatted); });
}

void check_http_text(std::string_view text) {
    const auto ms = util::parse_http_date_ms(text);
    if (!ms) return;
    check(*ms % 1000 == 0, "an IMF-fixdate is whole seconds", [&] { return printable(text); });
    const std::string formatted = util::format_http_date(*ms);
    check(util::parse_http_date_ms(formatted) == ms, "HTTP-date: format(parse(x)) parses to the same ms",
          [&] { return printable(text) + " -> " + std::to_string(*ms) + " ms -> " + printable(formatted); });
}

void check_instant(std::int64_t ms) {
    const std::string iso = util::format_iso8601_ms(ms);
    check(util::parse_iso8601_ms(iso) == ms, "ISO-8601: parse(format(ms)) == ms",
          [&] { return std::to_string(ms) + " ms -> " + printable(iso); });
    const std::string http = util::format_http_date(ms);
    check(util::parse_http_date_ms(http) == floor_to_second(ms), "HTTP-date: parse(format(ms)) == ms, whole seconds",
          [&] { return std::to_string(ms) + " ms -> " + printable(http); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view whole(reinterpret_cast<const char*>(data), size);
    check_iso_text(whole);
    check_http_text(whole);
    std::int64_t raw = 0;
    if (isync::fuzz::take_int64(data, size, raw)) check_instant(isync::fuzz::clamp_into(raw, first_ms, last_ms));
    return 0;
}
