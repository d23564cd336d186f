#include "util/duration.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using isync::util::format_duration;
using isync::util::parse_duration;

TEST(Duration, ParsesEveryUnit) {
    EXPECT_EQ(parse_duration("500ms"), 500ms);
    EXPECT_EQ(parse_duration("30s"), 30s);
    EXPECT_EQ(parse_duration("5m"), 5min);
    EXPECT_EQ(parse_duration("24h"), 24h);
    EXPECT_EQ(parse_duration("7d"), 7 * 24h);
    EXPECT_EQ(parse_duration("0s"), 0ms);
}

TEST(Duration, RejectsMalformed) {
    for (const char* bad : {"", "5", "m", "5 m", "-5m", "5min", "1.5s", "5mm", "99999999999999999999d", "5M"})
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(Duration, FormatsWithLargestEvenUnit) {
    EXPECT_EQ(format_duration(300000ms), "5m");
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(7 * 24h), "7d");
    EXPECT_EQ(format_duration(0ms), "0s");
}
