#include "util/timestamp.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

using isync::util::format_http_date;
using isync::util::format_iso8601_ms;
using isync::util::normalize_iso8601;
using isync::util::parse_http_date_ms;
using isync::util::parse_iso8601_ms;

namespace {

constexpr std::int64_t jan21_1500z = 1674313200000;  // 2023-01-21T15:00:00Z, the contract's `from`

}  // namespace

TEST(Timestamp, ParsesZuluWithoutFraction) {
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T15:00:00Z"), jan21_1500z);
    EXPECT_EQ(parse_iso8601_ms("1970-01-01T00:00:00Z"), 0);
}

TEST(Timestamp, ParsesMilliseconds) {
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T15:00:00.084Z"), jan21_1500z + 84);
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T15:00:00.5Z"), jan21_1500z + 500);
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T15:00:00.05Z"), jan21_1500z + 50);
}

TEST(Timestamp, ParsesPositiveOffset) {
    // 17:00 at +02:00 is 15:00 UTC.
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T17:00:00+02:00"), jan21_1500z);
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T17:00:00.084+02:00"), jan21_1500z + 84);
}

TEST(Timestamp, ParsesNegativeHalfHourOffset) {
    // 09:30 at -05:30 is 15:00 UTC.
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T09:30:00-05:30"), jan21_1500z);
}

TEST(Timestamp, OffsetCrossesTheDateLine) {
    EXPECT_EQ(normalize_iso8601("2023-01-01T01:00:00+02:00"), "2022-12-31T23:00:00.000Z");
    EXPECT_EQ(normalize_iso8601("2022-12-31T22:00:00-05:30"), "2023-01-01T03:30:00.000Z");
}

TEST(Timestamp, TruncatesFractionsBeyondMilliseconds) {
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T15:00:00.123456Z"), jan21_1500z + 123);
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T15:00:00.123456789Z"), jan21_1500z + 123);
    // Truncated, not rounded: .9999 must not roll into the next second.
    EXPECT_EQ(parse_iso8601_ms("2023-01-21T15:00:00.9999Z"), jan21_1500z + 999);
}

TEST(Timestamp, RejectsInvalidDatesAndTimes) {
    for (const char* bad : {
             "2023-02-30T00:00:00Z",       // Feb 30
             "2023-02-29T00:00:00Z",       // not a leap year
             "1900-02-29T00:00:00Z",       // century, not a leap year
             "2023-13-01T00:00:00Z",       // month 13
             "2023-00-10T00:00:00Z",       // month 0
             "2023-04-31T00:00:00Z",       // April has 30 days
             "2023-01-00T00:00:00Z",       // day 0
             "2023-01-21T24:00:00Z",       // hour 24
             "2023-01-21T15:60:00Z",       // minute 60
             "2023-01-21T15:00:00",        // missing zone
             "2023-01-21T15:00:00.084",    // missing zone after a fraction
             "2023-01-21",                 // date only
             "2023-01-21T15:00Z",          // no seconds
             "2023-01-21T15:00:00.Z",      // empty fraction
             "2023-01-21T15:00:00+2:00",   // one-digit offset hour
             "2023-01-21T15:00:00+24:00",  // offset hour out of range
             "2023-01-21T15:00:00Zjunk",   // trailing bytes
             "2023-1-21T15:00:00Z",        // one-digit month
             "",
             "not a date",
         }) {
        EXPECT_EQ(parse_iso8601_ms(bad), std::nullopt) << bad;
        EXPECT_EQ(normalize_iso8601(bad), std::nullopt) << bad;
    }
}

TEST(Timestamp, AcceptsLeapDays) {
    EXPECT_EQ(normalize_iso8601("2024-02-29T23:59:59.999Z"), "2024-02-29T23:59:59.999Z");
    EXPECT_EQ(normalize_iso8601("2000-02-29T00:00:00Z"), "2000-02-29T00:00:00.000Z");
}

TEST(Timestamp, FormatsUtcWithMilliseconds) {
    EXPECT_EQ(format_iso8601_ms(jan21_1500z), "2023-01-21T15:00:00.000Z");
    EXPECT_EQ(format_iso8601_ms(1674376215084), "2023-01-22T08:30:15.084Z");
    EXPECT_EQ(format_iso8601_ms(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_iso8601_ms(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Timestamp, RoundTripsFormatThenParse) {
    for (std::int64_t ms : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1}, jan21_1500z, jan21_1500z + 999,
                            std::int64_t{951782400000} /* 2000-02-29 */, std::int64_t{253402300799999} /* 9999 */,
                            std::int64_t{-62167219200000} /* 0000-01-01 */}) {
        const std::string text = format_iso8601_ms(ms);
        EXPECT_EQ(parse_iso8601_ms(text), ms) << text;
    }
}

TEST(Timestamp, RoundTripsParseThenFormat) {
    for (const char* text : {"2023-01-21T15:00:00.000Z", "2024-02-29T23:59:59.999Z", "1999-12-31T23:59:59.001Z"}) {
        auto ms = parse_iso8601_ms(text);
        ASSERT_TRUE(ms.has_value()) << text;
        EXPECT_EQ(format_iso8601_ms(*ms), text);
    }
}

TEST(Timestamp, NormalizesEveryAcceptedForm) {
    EXPECT_EQ(normalize_iso8601("2023-01-21T15:00:00Z"), "2023-01-21T15:00:00.000Z");
    EXPECT_EQ(normalize_iso8601("2023-01-21T15:00:00.084Z"), "2023-01-21T15:00:00.084Z");
    EXPECT_EQ(normalize_iso8601("2023-01-21T17:00:00+02:00"), "2023-01-21T15:00:00.000Z");
    EXPECT_EQ(normalize_iso8601("2023-01-21T09:30:00-05:30"), "2023-01-21T15:00:00.000Z");
}

TEST(HttpDate, ParsesImfFixdate) {
    EXPECT_EQ(parse_http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777000);
    EXPECT_EQ(parse_http_date_ms("Sat, 21 Jan 2023 15:00:00 GMT"), jan21_1500z);
    EXPECT_EQ(parse_http_date_ms("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
}

TEST(HttpDate, RejectsMalformed) {
    for (const char* bad : {
             "Sun, 06 Nov 1994 08:49:37 UTC",   // zone must be GMT
             "Sunday, 06-Nov-94 08:49:37 GMT",  // RFC 850 form
             "Sun Nov  6 08:49:37 1994",        // asctime form
             "Sun, 6 Nov 1994 08:49:37 GMT",    // one-digit day
             "Xyz, 06 Nov 1994 08:49:37 GMT",   // not a weekday
             "Sun, 06 Foo 1994 08:49:37 GMT",   // not a month
             "Sun, 30 Feb 1994 08:49:37 GMT",   // no such date
             "Sun, 06 Nov 1994 25:49:37 GMT",   // hour 25
             "120",
             "",
         })
        EXPECT_EQ(parse_http_date_ms(bad), std::nullopt) << bad;
}

TEST(HttpDate, Formats) {
    EXPECT_EQ(format_http_date(784111777000), "Sun, 06 Nov 1994 08:49:37 GMT");
    EXPECT_EQ(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(format_http_date(jan21_1500z + 999), "Sat, 21 Jan 2023 15:00:00 GMT");  // millis dropped
    EXPECT_EQ(format_http_date(1709251199999), "Thu, 29 Feb 2024 23:59:59 GMT");
}

TEST(HttpDate, RoundTrips) {
    for (std::int64_t ms : {std::int64_t{0}, std::int64_t{784111777000}, jan21_1500z, std::int64_t{1709251199000},
                            std::int64_t{4102444800000} /* 2100-01-01 */}) {
        const std::string text = format_http_date(ms);
        EXPECT_EQ(parse_http_date_ms(text), ms) << text;
    }
}
