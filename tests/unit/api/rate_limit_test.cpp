// api/rate_limit: the API's stated budget, read against the server's clock.
#include "api/rate_limit.hpp"
#include "util/timestamp.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using isync::api::parse_rate_limit;
using isync::api::server_now_ms;

namespace {
constexpr std::int64_t server_now = 1'765'000'000'000;  // 2025-12-06T05:46:40Z
}

TEST(RateLimit, ResetInEpochSecondsIsMeasuredFromTheServersNow) {
    const auto b = parse_rate_limit("42", "1765000030", server_now);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->remaining, 42);
    EXPECT_EQ(b->until_reset, 30s);
}

TEST(RateLimit, SmallResetIsSecondsFromNowAndHugeResetIsEpochMilliseconds) {
    EXPECT_EQ(parse_rate_limit("1", "7", server_now)->until_reset, 7s);
    EXPECT_EQ(parse_rate_limit("1", "1765000001500", server_now)->until_reset, 1500ms);
}

TEST(RateLimit, AResetInThePastIsNoWait) {
    EXPECT_EQ(parse_rate_limit("0", "1764999000", server_now)->until_reset, 0ms);
}

TEST(RateLimit, AnAbsentOrUnreadableHeaderIsNoBudget) {
    EXPECT_FALSE(parse_rate_limit("", "1765000030", server_now));
    EXPECT_FALSE(parse_rate_limit("10", "", server_now));
    EXPECT_FALSE(parse_rate_limit("-1", "1765000030", server_now));
    EXPECT_FALSE(parse_rate_limit("ten", "1765000030", server_now));
    EXPECT_FALSE(parse_rate_limit("10", "1765000030.5", server_now));
    EXPECT_EQ(parse_rate_limit(" 10 ", " 5 ", server_now)->remaining, 10);  // optional whitespace
}

// A daemon whose clock is an hour behind the server's still waits the 30 s
// the server means: the Date header, not the local clock, is the reference.
TEST(RateLimit, TheServersDateHeaderIsTheReferenceNotTheLocalClock) {
    const std::string date = isync::util::format_http_date(server_now);
    const std::int64_t local_an_hour_behind = server_now - 3'600'000;
    EXPECT_EQ(server_now_ms(date, local_an_hour_behind), server_now);
    const auto b = parse_rate_limit("0", "1765000030", server_now_ms(date, local_an_hour_behind));
    EXPECT_EQ(b->until_reset, 30s);
    // Without a (readable) Date, the local clock is all there is.
    EXPECT_EQ(server_now_ms("", local_an_hour_behind), local_an_hour_behind);
    EXPECT_EQ(server_now_ms("yesterday", local_an_hour_behind), local_an_hour_behind);
}
