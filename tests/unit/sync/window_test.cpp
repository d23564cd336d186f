// plan_slices: which windows a pair's poll reads, with the clock as a parameter.

#include "sync/window.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

using namespace std::chrono_literals;
using isync::config::sync_config;
using isync::sync::plan_slices;
using isync::sync::slice;

namespace {

constexpr std::int64_t minute = 60'000;
constexpr std::int64_t hour = 60 * minute;
constexpr std::int64_t day = 24 * hour;
// 2023-01-22T15:00:00.000Z: a fixed "now", never the real clock.
constexpr std::int64_t now = 1'674'399'600'000;

sync_config settings(std::chrono::milliseconds lookback = 24h, std::chrono::milliseconds overlap = 15min,
                     std::chrono::milliseconds settle = 1min, std::chrono::milliseconds max_window = 6h) {
    sync_config s;
    s.initial_lookback = lookback;
    s.overlap = overlap;
    s.settle = settle;
    s.max_window = max_window;
    return s;
}

// Consecutive, oldest first, each no longer than `max`, covering [from, to) exactly.
::testing::AssertionResult tiles(const std::vector<slice>& slices, std::int64_t from, std::int64_t to,
                                 std::int64_t max) {
    if (slices.empty()) return ::testing::AssertionFailure() << "no slices for [" << from << ", " << to << ")";
    if (slices.front().from_ms != from)
        return ::testing::AssertionFailure() << "first slice starts at " << slices.front().from_ms << ", not " << from;
    if (slices.back().to_ms != to)
        return ::testing::AssertionFailure() << "last slice ends at " << slices.back().to_ms << ", not " << to;
    for (std::size_t i = 0; i < slices.size(); ++i) {
        const auto& s = slices[i];
        if (s.to_ms <= s.from_ms) return ::testing::AssertionFailure() << "slice " << i << " is empty or reversed";
        if (s.to_ms - s.from_ms > max)
            return ::testing::AssertionFailure() << "slice " << i << " is " << s.to_ms - s.from_ms << " ms long";
        if (i > 0 && slices[i - 1].to_ms != s.from_ms)
            return ::testing::AssertionFailure() << "slice " << i << " does not start where slice " << i - 1 << " ends";
    }
    return ::testing::AssertionSuccess();
}

}  // namespace

TEST(PlanSlices, FirstRunReadsTheInitialLookbackUpToSettle) {
    const auto slices = plan_slices(std::nullopt, now, settings(24h, 15min, 1min, 6h));
    EXPECT_TRUE(tiles(slices, now - day, now - minute, 6 * hour));
    ASSERT_EQ(slices.size(), 4u);  // 24 h - 1 min in 6 h slices
    EXPECT_EQ(slices[0], (slice{now - day, now - day + 6 * hour}));
    EXPECT_EQ(slices[3], (slice{now - day + 18 * hour, now - minute}));
}

TEST(PlanSlices, LaterRunsReadFromTheWatermarkMinusOverlap) {
    const std::int64_t watermark = now - 2 * hour;
    const auto slices = plan_slices(watermark, now, settings(24h, 15min, 1min, 6h));
    ASSERT_EQ(slices.size(), 1u);
    EXPECT_EQ(slices[0], (slice{watermark - 15 * minute, now - minute}));
}

TEST(PlanSlices, WatermarkIgnoresTheInitialLookback) {
    // A watermark older than the lookback is still where reading resumes.
    const std::int64_t watermark = now - 3 * day;
    const auto slices = plan_slices(watermark, now, settings(1h, 0ms, 0ms, 6h));
    EXPECT_TRUE(tiles(slices, watermark, now, 6 * hour));
    EXPECT_EQ(slices.size(), 12u);
}

TEST(PlanSlices, SplitsIntoMaxWindowSlicesAndTheLastEndsExactlyAtNowMinusSettle) {
    const std::int64_t watermark = now - 10 * hour - 7;  // not a whole number of slices
    const auto slices = plan_slices(watermark, now, settings(24h, 5min, 90s, 1h));
    const std::int64_t from = watermark - 5 * minute;
    const std::int64_t to = now - 90'000;
    EXPECT_TRUE(tiles(slices, from, to, hour));
    // All but the last are exactly max_window long.
    for (std::size_t i = 0; i + 1 < slices.size(); ++i) EXPECT_EQ(slices[i].to_ms - slices[i].from_ms, hour) << i;
    EXPECT_EQ(slices.size(), static_cast<std::size_t>((to - from + hour - 1) / hour));
}

TEST(PlanSlices, SevenDayLookbackWithSixHourWindowsIsTwentyEightSlices) {
    const auto slices = plan_slices(std::nullopt, now, settings(7 * 24h, 15min, 0ms, 6h));
    ASSERT_EQ(slices.size(), 28u);
    EXPECT_TRUE(tiles(slices, now - 7 * day, now, 6 * hour));
    for (const auto& s : slices) EXPECT_EQ(s.to_ms - s.from_ms, 6 * hour);

    // With the default one-minute settle the last slice is a minute short, still 28.
    const auto settled = plan_slices(std::nullopt, now, settings(7 * 24h, 15min, 1min, 6h));
    ASSERT_EQ(settled.size(), 28u);
    EXPECT_TRUE(tiles(settled, now - 7 * day, now - minute, 6 * hour));
}

TEST(PlanSlices, ZeroSettleReadsUpToNow) {
    const auto first = plan_slices(std::nullopt, now, settings(2h, 15min, 0ms, 6h));
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0], (slice{now - 2 * hour, now}));

    const auto later = plan_slices(now - hour, now, settings(2h, 10min, 0ms, 6h));
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(later[0], (slice{now - hour - 10 * minute, now}));
}

TEST(PlanSlices, WatermarkAtOrAfterNowMinusSettleIsEmpty) {
    const auto cfg = settings(24h, 15min, 1min, 6h);
    EXPECT_TRUE(plan_slices(now - minute, now, cfg).empty()) << "watermark exactly at now - settle";
    EXPECT_TRUE(plan_slices(now - minute + 1, now, cfg).empty());
    EXPECT_TRUE(plan_slices(now + hour, now, cfg).empty()) << "the clock stepped back";
    // One millisecond before the boundary there is a window: overlap + 1 ms.
    const auto just_before = plan_slices(now - minute - 1, now, cfg);
    ASSERT_EQ(just_before.size(), 1u);
    EXPECT_EQ(just_before[0], (slice{now - minute - 1 - 15 * minute, now - minute}));
}

TEST(PlanSlices, SliceExactlyMaxWindowLongIsOneSlice) {
    const auto slices = plan_slices(std::nullopt, now, settings(6h, 0ms, 0ms, 6h));
    ASSERT_EQ(slices.size(), 1u);
    EXPECT_EQ(slices[0], (slice{now - 6 * hour, now}));
}

TEST(PlanSlices, ResultDependsOnlyOnTheGivenNow) {
    const auto cfg = settings();
    EXPECT_EQ(plan_slices(std::nullopt, now, cfg), plan_slices(std::nullopt, now, cfg));
    const auto a = plan_slices(now - hour, now, cfg);
    const auto b = plan_slices(now - hour, now + 1000, cfg);
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].to_ms - a[0].to_ms, 1000);
}

// ------------------------------------------------------------------ split_by_count

using isync::sync::split_by_count;

TEST(SplitByCount, AWindowWithFewIncidentsIsOneSliceWhateverItsLength) {
    const slice month{now - 30 * day, now};
    EXPECT_EQ(split_by_count(month, 0, 5000), std::vector<slice>{month});  // empty: one request
    EXPECT_EQ(split_by_count(month, 4999, 5000), std::vector<slice>{month});
    EXPECT_EQ(split_by_count(month, 5000, 5000), std::vector<slice>{month});
}

TEST(SplitByCount, MoreThanTheLimitSplitsIntoEqualSpansThatTileTheWindow) {
    const slice week{now - 7 * day, now};
    const auto parts = split_by_count(week, 12'001, 5000);
    ASSERT_EQ(parts.size(), 3u);  // ceil(12001 / 5000)
    EXPECT_TRUE(tiles(parts, week.from_ms, week.to_ms, 7 * day / 3 + 1));
    for (const auto& p : parts) EXPECT_NEAR(static_cast<double>(p.to_ms - p.from_ms), 7.0 * day / 3, 1.0);
}

TEST(SplitByCount, NeverMakesASpanShorterThanAMillisecond) {
    const slice tiny{now, now + 3};
    const auto parts = split_by_count(tiny, 1'000'000, 5000);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_TRUE(tiles(parts, now, now + 3, 1));
    const slice one_ms{now, now + 1};
    EXPECT_EQ(split_by_count(one_ms, 1'000'000, 5000), std::vector<slice>{one_ms});
}

// A window that grows while it is planned: its parts are asked again and
// split again while they hold too many (the engine's loop); each split
// still tiles its part exactly, so nothing falls between the parts.
TEST(SplitByCount, APartThatStillHoldsTooManyIsSplitAgainWithoutGaps) {
    const slice day_window{now - day, now};
    auto parts = split_by_count(day_window, 10'000, 5000);
    ASSERT_EQ(parts.size(), 2u);
    const auto again = split_by_count(parts[0], 9'000, 5000);  // the first half held most of them
    ASSERT_EQ(again.size(), 2u);
    std::vector<slice> all = again;
    all.push_back(parts[1]);
    EXPECT_TRUE(tiles(all, day_window.from_ms, day_window.to_ms, day));
}
