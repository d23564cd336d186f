#include "api/backoff.hpp"

#include <gtest/gtest.h>

#include <chrono>

using namespace std::chrono_literals;
using isync::api::backoff;
using isync::config::retry_config;

namespace {

retry_config policy(std::chrono::milliseconds base = 500ms, std::chrono::milliseconds max = 60s, int attempts = 6) {
    retry_config p;
    p.base_delay = base;
    p.max_delay = max;
    p.max_attempts = attempts;
    return p;
}

backoff with_uniform(double u, retry_config p = policy()) {
    return backoff(p, [u] { return u; });
}

}  // namespace

TEST(Backoff, CapsDoubleFromBaseDelayAndClampAtMaxDelay) {
    const backoff b = with_uniform(0.5);
    EXPECT_EQ(b.cap(1), 500ms);
    EXPECT_EQ(b.cap(2), 1000ms);
    EXPECT_EQ(b.cap(3), 2000ms);
    EXPECT_EQ(b.cap(4), 4000ms);
    EXPECT_EQ(b.cap(5), 8000ms);
    EXPECT_EQ(b.cap(6), 16000ms);
    EXPECT_EQ(b.cap(7), 32000ms);
    EXPECT_EQ(b.cap(8), 60000ms);  // 64 s clamped
    EXPECT_EQ(b.cap(9), 60000ms);
    EXPECT_EQ(b.cap(20), 60000ms);
}

TEST(Backoff, CapsNeverDecreaseAndNeverExceedMaxDelay) {
    const backoff b = with_uniform(0.5, policy(3ms, 1000ms));
    auto previous = 0ms;
    for (int retry = 1; retry <= 200; ++retry) {
        const auto cap = b.cap(retry);
        EXPECT_GE(cap, previous) << retry;
        EXPECT_LE(cap, 1000ms) << retry;
        EXPECT_GT(cap, 0ms) << retry;
        previous = cap;
    }
    EXPECT_EQ(b.cap(9), 768ms);  // 3 * 2^8
    EXPECT_EQ(b.cap(10), 1000ms);
}

TEST(Backoff, DelayIsWithinZeroAndCapForEveryDraw) {
    for (double u : {0.0, 0.5, 0.999999}) {
        const backoff b = with_uniform(u);
        for (int retry = 1; retry <= 20; ++retry) {
            const auto d = b.delay(retry);
            EXPECT_GE(d, 0ms) << "u=" << u << " retry=" << retry;
            EXPECT_LE(d, b.cap(retry)) << "u=" << u << " retry=" << retry;
        }
    }
}

TEST(Backoff, DelayIsTheDrawScaledToTheCap) {
    // Full jitter: the draw picks a point in [0, cap], it is not added to a base.
    EXPECT_EQ(with_uniform(0.0).delay(1), 0ms);
    EXPECT_EQ(with_uniform(0.0).delay(20), 0ms);
    EXPECT_EQ(with_uniform(0.5).delay(1), 250ms);
    EXPECT_EQ(with_uniform(0.5).delay(3), 1000ms);
    EXPECT_EQ(with_uniform(0.5).delay(20), 30000ms);
    EXPECT_EQ(with_uniform(0.999999).delay(20), 59999ms);
    EXPECT_EQ(with_uniform(0.999999).delay(1), 499ms);
}

TEST(Backoff, EachDelayDrawsAgain) {
    int calls = 0;
    const backoff b(policy(), [&calls] { return ++calls % 2 ? 0.0 : 0.5; });
    EXPECT_EQ(b.delay(3), 0ms);
    EXPECT_EQ(b.delay(3), 1000ms);
    EXPECT_EQ(calls, 2);
}

TEST(Backoff, NoOverflowForLargeRetryNumbers) {
    const backoff b = with_uniform(0.999999);
    for (int retry : {62, 63, 64, 65, 100, 1000, 1 << 30}) {
        EXPECT_EQ(b.cap(retry), 60s) << retry;
        const auto d = b.delay(retry);
        EXPECT_GE(d, 0ms) << retry;
        EXPECT_LE(d, 60s) << retry;
    }
}

TEST(Backoff, NoOverflowWithAHugeMaxDelay) {
    // Even when max_delay does not clamp early, shifting must not wrap negative.
    const backoff b = with_uniform(0.5, policy(1000ms, std::chrono::milliseconds::max()));
    auto previous = 0ms;
    for (int retry = 1; retry <= 100; ++retry) {
        const auto cap = b.cap(retry);
        EXPECT_GT(cap, 0ms) << retry;
        EXPECT_GE(cap, previous) << retry;
        previous = cap;
        EXPECT_GE(b.delay(retry), 0ms) << retry;
    }
}

TEST(Backoff, BaseAboveMaxIsClamped) {
    const backoff b = with_uniform(0.5, policy(90s, 60s));
    EXPECT_EQ(b.cap(1), 60s);
    EXPECT_EQ(b.cap(100), 60s);
}

TEST(Backoff, ExhaustedAtExactlyMaxAttempts) {
    const backoff b = with_uniform(0.5, policy(500ms, 60s, 3));
    EXPECT_FALSE(b.exhausted(0));
    EXPECT_FALSE(b.exhausted(1));
    EXPECT_FALSE(b.exhausted(2));
    EXPECT_TRUE(b.exhausted(3));
    EXPECT_TRUE(b.exhausted(4));
}

TEST(Backoff, SingleAttemptMeansNoRetry) {
    const backoff b = with_uniform(0.5, policy(500ms, 60s, 1));
    EXPECT_FALSE(b.exhausted(0));
    EXPECT_TRUE(b.exhausted(1));
}
