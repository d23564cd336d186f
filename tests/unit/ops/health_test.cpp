// The one health rule behind `status --check` and /readyz (ops/health.hpp),
// on a fake clock. The integration test DaemonHealth.* checks that both
// commands answer the same on the same database.
#include "ops/health.hpp"

#include <gtest/gtest.h>

using isync::ops::judge_health;
using isync::ops::judge_pair;
using isync::ops::pair_facts;
using isync::ops::pair_state;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000;
const isync::ops::health_policy policy{5min, 1min};
const isync::config::pair a{"PXa", "a.example"};
const isync::config::pair b{"PXb", "b.example"};

pair_facts synced(isync::config::pair p, std::int64_t at) {
    pair_facts f;
    f.pair = p;
    f.last_success_ms = at;
    f.watermark_ms = at - 60'000;
    return f;
}

}  // namespace

TEST(Health, RecentSuccessCaughtUpIsOk) {
    const auto v = judge_pair(synced(a, t0), t0 + std::chrono::milliseconds(15min).count(), policy);
    EXPECT_EQ(v.state, pair_state::ok);
    EXPECT_TRUE(v.healthy);
}

TEST(Health, ThreeIntervalsAndOneMillisecondWithoutSuccessIsFailing) {
    const auto v = judge_pair(synced(a, t0), t0 + std::chrono::milliseconds(15min).count() + 1, policy);
    EXPECT_EQ(v.state, pair_state::failing);
    EXPECT_FALSE(v.healthy);
    EXPECT_NE(v.reason.find("no success within three intervals"), std::string::npos) << v.reason;
}

TEST(Health, FirstPollInProgressIsABackfillNotAFailure) {
    pair_facts f;
    f.pair = a;
    f.poll_started_ms = t0;
    const auto v = judge_pair(f, t0 + std::chrono::milliseconds(2h).count(), policy);
    EXPECT_EQ(v.state, pair_state::backfilling);
    EXPECT_TRUE(v.healthy);
    EXPECT_EQ(v.reason, "first backfill in progress");
    // Not polling: never synced is a failure.
    f.poll_started_ms.reset();
    EXPECT_FALSE(judge_pair(f, t0, policy).healthy);
}

TEST(Health, CommittedSlicesFarBehindNowAreABackfill) {
    pair_facts f = synced(a, t0);
    f.watermark_ms = t0 - std::chrono::milliseconds(3 * 24h).count();  // slices commit, the window is days long
    const auto v = judge_pair(f, t0 + 1000, policy);
    EXPECT_EQ(v.state, pair_state::backfilling);
    EXPECT_TRUE(v.healthy);
    EXPECT_EQ(v.reason, "backfill in progress");
}

TEST(Health, APollThatFailedSinceItStartedIsNotInProgress) {
    pair_facts f;
    f.pair = a;
    f.poll_started_ms = t0;
    f.last_error_ms = t0 + 5;
    const auto v = judge_pair(f, t0 + 10, policy);
    EXPECT_FALSE(v.healthy);
    EXPECT_NE(v.reason.find("never synced; last error at"), std::string::npos) << v.reason;
}

TEST(Health, RefusedTokenIsUnhealthyEvenRightAfterASuccess) {
    pair_facts f = synced(a, t0);
    f.auth_failing = true;
    EXPECT_EQ(judge_pair(f, t0, policy).state, pair_state::auth_failing);
    EXPECT_FALSE(judge_pair(f, t0, policy).healthy);
}

TEST(Health, RemovedPairsAreListedButNeverMakeTheWholeUnhealthy) {
    pair_facts gone = synced(b, t0 - std::chrono::milliseconds(30 * 24h).count());  // stale for a month
    gone.configured = false;
    const auto v = judge_health({synced(a, t0), gone}, t0 + 1000, policy);
    EXPECT_TRUE(v.healthy);
    EXPECT_EQ(v.summary, "ready");
    ASSERT_EQ(v.pairs.size(), 2u);
    EXPECT_EQ(v.pairs[1].state, pair_state::removed);
    EXPECT_EQ(v.pairs[1].reason, "removed from the configuration; its data is kept");
    // With discovery, a pair also leaves when the account stops listing it.
    auto with_discovery = policy;
    with_discovery.discover = true;
    EXPECT_EQ(judge_health({synced(a, t0), gone}, t0 + 1000, with_discovery).pairs[1].reason,
              "no longer polled (not in sync.pairs, and discovery does not select it); its data is kept");
}

TEST(Health, OneFailingPairMakesTheWholeUnhealthyAndNamesIt) {
    pair_facts never;
    never.pair = b;
    const auto v = judge_health({synced(a, t0), never}, t0 + 1000, policy);
    EXPECT_FALSE(v.healthy);
    EXPECT_EQ(v.summary, "not ready: PXb/b.example never synced");
}

TEST(Health, ABackfillAnywhereSaysSoWhileHealthy) {
    pair_facts first;
    first.pair = b;
    first.poll_started_ms = t0;
    const auto v = judge_health({synced(a, t0), first}, t0 + 1000, policy);
    EXPECT_TRUE(v.healthy);
    EXPECT_TRUE(v.backfilling);
    EXPECT_EQ(v.summary, "backfill in progress");
}
