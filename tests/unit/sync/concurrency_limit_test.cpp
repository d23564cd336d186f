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

// Slow start overshoots (16 refused by a gateway that takes ~10): the limit
// halves to the last one that worked, holds it for ten rounds at the limit,
// then probes one above; a probe that passes three rounds resumes growth by
// one per round.
TEST(ConcurrencyLimit, AfterAnOvershootItHoldsTheLimitThatWorkedThenProbesAndGrowsByOne) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 64});
    scripted_clock clock;
    answer_a_round(c, clock);  // 16
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 16, clock.now);
    ASSERT_EQ(c.limit(), 8);
    std::vector<int> limits;
    for (int round = 0; round < 14; ++round) {
        answer_a_round(c, clock);
        limits.push_back(c.limit());
    }
    EXPECT_EQ(limits, (std::vector<int>{8, 8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 10, 11}));
}

// A gateway with a hard cap of 8: each probe to 9 is refused less than a
// round trip after the increase. The limit returns to 8 (not 4: halving would
// idle half the link), and each refused probe doubles the wait for the next,
// so the 429s (each pausing every request) grow rarer: after 10, 20, 40 round trips.
TEST(ConcurrencyLimit, ARefusedProbeIsUndoneAndTheNextProbeWaitsTwiceAsLong) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 64});
    scripted_clock clock;
    answer_a_round(c, clock);  // 16
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 16, clock.now);  // 8
    std::vector<int> rounds_between_probes;
    int rounds = 0;
    while (rounds_between_probes.size() < 3 && rounds < 200) {
        answer_a_round(c, clock);
        ++rounds;
        if (c.limit() == 9) {
            rounds_between_probes.push_back(rounds);
            rounds = 0;
            clock.advance(10ms);  // a tenth of a round trip after the increase
            c.on_response(response_signal::backpressure, 100ms, 9, clock.now);
            ASSERT_EQ(c.limit(), 8) << "a refused probe goes back to the limit that worked";
        }
        ASSERT_GE(c.limit(), 8);
    }
    EXPECT_EQ(rounds_between_probes, (std::vector<int>{10, 20, 40}));
}

// Rounds at the limit count, not time: a Retry-After pause (no answers at
// all) brings the next probe no closer.
TEST(ConcurrencyLimit, TimeSpentPausedDoesNotCountTowardTheNextProbe) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 64});
    scripted_clock clock;
    answer_a_round(c, clock);  // 16
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 16, clock.now);  // 8, probe after 10 rounds
    clock.advance(5000ms);  // paused: fifty round trips of time, no answers
    for (int round = 0; round < 9; ++round) answer_a_round(c, clock);
    EXPECT_EQ(c.limit(), 8);
    answer_a_round(c, clock);
    EXPECT_EQ(c.limit(), 9);
}

// Where a refusal pauses everyone (429 Retry-After: 1 s), a probe also waits
// ten pauses' worth of time at the limit, so a gateway with a hard cap costs
// at most a tenth of the time in pauses: ten rounds of 100 ms are not enough.
TEST(ConcurrencyLimit, AProbeWaitsTenTimesThePauseARefusalCosts) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 64});
    scripted_clock clock;
    answer_a_round(c, clock);  // 16
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 16, clock.now);  // 8
    c.on_pause(1000ms);
    for (int round = 0; round < 99; ++round) answer_a_round(c, clock);  // 9.9 s at the limit
    EXPECT_EQ(c.limit(), 8);
    answer_a_round(c, clock);  // 10 s
    EXPECT_EQ(c.limit(), 9);
}

// Back-pressure that does not follow an increase is not a probe: it halves.
TEST(ConcurrencyLimit, BackPressureLongAfterAnIncreaseHalves) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 64});
    scripted_clock clock;
    answer_a_round(c, clock);  // 16
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 16, clock.now);  // 8
    for (int round = 0; round < 14; ++round) answer_a_round(c, clock);   // 9 (probe, passed after 3), 10, 11
    ASSERT_EQ(c.limit(), 11);
    clock.advance(500ms);  // five round trips later, no increase since: the API got slower
    c.on_response(response_signal::backpressure, 100ms, 11, clock.now);
    EXPECT_EQ(c.limit(), 5);
}

// A gateway with a hard cap of 8: the limit sits at 8 for many rounds, then
// one 429 (a request that reached the gateway before it counted an answer
// done). One less, not half; a timeout there still halves, and so does a
// second refusal before the limit held again.
TEST(ConcurrencyLimit, A429AtALimitThatHeldStepsDownByOneNotByHalf) {
    concurrency_controller c({.initial = 8, .min = 1, .max = 16});
    scripted_clock clock;
    answer_a_round(c, clock);  // 16
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 16, clock.now);  // the overshoot: back to 8
    c.on_pause(1000ms);                                                  // its Retry-After paused everyone
    ASSERT_EQ(c.limit(), 8);
    for (int round = 0; round < 12; ++round) answer_a_round(c, clock);  // 8 holds (a probe of 9 waits 10 s)
    ASSERT_EQ(c.limit(), 8);
    clock.advance(100ms);
    c.on_response(response_signal::backpressure, 100ms, 8, clock.now);
    EXPECT_EQ(c.limit(), 7) << "a 429 at a limit that held is the cap's edge";
    clock.advance(150ms);
    c.on_response(response_signal::backpressure, 100ms, 7, clock.now);
    EXPECT_EQ(c.limit(), 3) << "a second 429 at once is congestion: halve";

    // Slow start stopped at api.max_in_flight (8, the gateway's cap too): no
    // overshoot ever came, and the edge's 429 steps down by one as well.
    concurrency_controller capped({.initial = 4, .min = 1, .max = 8});
    for (int round = 0; round < 12; ++round) answer_a_round(capped, clock);
    ASSERT_EQ(capped.limit(), 8);
    clock.advance(100ms);
    capped.on_response(response_signal::backpressure, 100ms, 8, clock.now);
    EXPECT_EQ(capped.limit(), 7);

    concurrency_controller t({.initial = 8, .min = 1, .max = 8});
    for (int round = 0; round < 12; ++round) answer_a_round(t, clock);
    ASSERT_EQ(t.limit(), 8);
    clock.advance(100ms);
    t.on_response(response_signal::timeout, 100ms, 8, clock.now);
    EXPECT_EQ(t.limit(), 4) << "a timeout at a limit that held still halves";
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

TEST(ConcurrencyLimit, AFewMillisecondsMoreOnANearApiIsNoSpike) {
    // Loopback or a LAN: round trips of about 1 ms, and a 4 ms one now and
    // then from scheduling. Four times the average, but not back-pressure.
    concurrency_controller c({.initial = 8, .min = 1, .max = 8});
    scripted_clock clock;
    for (int round = 0; round < 5; ++round) answer_a_round(c, clock, 1ms);
    ASSERT_EQ(c.limit(), 8);
    clock.advance(4ms);
    c.on_response(response_signal::ok, 4ms, 8, clock.now);
    EXPECT_EQ(c.limit(), 8);
    EXPECT_EQ(c.decreases(), 0u);
    // A real stall on the same API still is one.
    clock.advance(200ms);
    c.on_response(response_signal::ok, 200ms, 8, clock.now);
    EXPECT_EQ(c.limit(), 4);
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
