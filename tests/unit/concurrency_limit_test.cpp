// The adaptive limit on requests in flight, on a scripted clock: no sockets,
// no sleeps (sync/concurrency_limit.hpp).
#include "sync/concurrency_limit.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using isync::sync::concurrency_controller;
using isync::sync::concurrency_settings;
using isync::sync::response_signal;

namespace {

struct scripted_clock {
    concurrency_controller::time_point now{std::chrono::seconds(1000)};
    void advance(std::chrono::milliseconds d) { now += d; }
};

// One round trip's worth of answers at the current limit, all in time.
void answer_a_round(concurrency_controller& c, scripted_clock& clock, std::chrono::milliseconds rtt = 100ms) {
    clock.advance(rtt);
    for (int i = 0; i < c.limit(); ++i) c.on_response(response_signal::ok, rtt, c.limit(), clock.now);
}

}  // namespace

TEST(ConcurrencyLimit, SlowStartDoublesPerRoundTripUpToTheCeiling) {
    concurrency_controller c({.initial = 2, .min = 1, .max = 20});
    scripted_clock clock;
    std::vector<int> limits;
    for (int round = 0; round < 6; ++round) {
        answer_a_round(c, clock);
        limits.push_back(c.limit());
    }
    EXPECT_EQ(limits, (std::vector<int>{4, 8, 16, 20, 20, 20}));
}

TEST(ConcurrencyLimit, AnIdleLimitNeverGrows) {
    concurrency_controller c({.initial = 4, .min = 1, .max = 32});
    scripted_clock clock;
    for (int round = 0; round < 10; ++round) {
        clock.advance(100ms);
        c.on_response(response_signal::ok, 100ms, 1, clock.now);  // one request at a time
    }
    EXPECT_EQ(c.limit(), 4);
}

TEST(ConcurrencyLimit, BackPressureHalvesOncePerRoundTripNotOncePerRefusal) {
    concurrency_controller c({.initial = 16, .min = 1, .max = 32});
    scripted_clock clock;
    answer_a_round(c, clock);  // learn the round trip (and grow to 32)
    ASSERT_EQ(c.limit(), 32);
    clock.advance(100ms);
    for (int i = 0; i < 10; ++i) c.on_response(response_signal::backpressure, 100ms, 32, clock.now);  // a burst of 429s
    EXPECT_EQ(c.limit(), 16);
    EXPECT_EQ(c.decreases(), 1u);
    clock.advance(150ms);
    c.on_response(response_signal::timeout, 100ms, 16, clock.now);
    EXPECT_EQ(c.limit(), 8);
}

TEST(ConcurrencyLimit, AfterBackPressureItGrowsByOneAndProbesTheOldLimitRarely) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 64});
    scripted_clock clock;
    answer_a_round(c, clock);  // 16
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 16, clock.now);  // a gateway refuses above ~10
    ASSERT_EQ(c.limit(), 8);
    std::vector<int> limits;
    for (int round = 0; round < 30; ++round) {
        answer_a_round(c, clock);
        limits.push_back(c.limit());
    }
    // Additive from 8, no more doubling; 15 (one below the limit that was
    // refused) is reached quickly, 16 only after ten round trips there.
    EXPECT_EQ(limits[0], 9);
    EXPECT_EQ(limits[1], 10);
    EXPECT_EQ(limits[6], 15);
    EXPECT_EQ(limits[7], 15);
    EXPECT_EQ(limits[15], 15);
    EXPECT_EQ(limits[16], 16);
    EXPECT_EQ(limits[25], 16);  // and on, as rarely, above it
    EXPECT_EQ(limits[26], 17);
}

// The probe one above the limit is refused less than a round trip after the
// increase: that refusal must still bring the limit down, or the next burst
// after the Retry-After pause goes out one too many again.
TEST(ConcurrencyLimit, ARefusalRightAfterAnIncreaseStillDecreases) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 64});
    scripted_clock clock;
    answer_a_round(c, clock);  // 16
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 16, clock.now);  // 8
    answer_a_round(c, clock);  // 9
    ASSERT_EQ(c.limit(), 9);
    clock.advance(10ms);  // a tenth of a round trip after the increase
    c.on_response(response_signal::backpressure, 100ms, 9, clock.now);
    EXPECT_EQ(c.limit(), 4);
}

TEST(ConcurrencyLimit, ARoundTripSpikeIsBackPressureButDoesNotMoveTheAverage) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 8});
    scripted_clock clock;
    for (int round = 0; round < 5; ++round) answer_a_round(c, clock, 100ms);
    EXPECT_EQ(c.average_rtt(), 100ms);
    clock.advance(1000ms);
    c.on_response(response_signal::ok, 1000ms, 8, clock.now);  // ten times the usual: the API is struggling
    EXPECT_EQ(c.limit(), 4);
    EXPECT_EQ(c.average_rtt(), 100ms);
}

TEST(ConcurrencyLimit, NeverBelowTheFloor) {
    concurrency_controller c({.initial = 2, .min = 1, .max = 8});
    scripted_clock clock;
    for (int i = 0; i < 10; ++i) {
        clock.advance(1s);
        c.on_response(response_signal::backpressure, 100ms, 2, clock.now);
    }
    EXPECT_EQ(c.limit(), 1);
}
