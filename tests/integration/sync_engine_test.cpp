// The engine against the fake API over real TLS into a real SQLite file.
#include "support/db_reader.hpp"
#include "support/sync_harness.hpp"

#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

using test_support::harness_options;
using test_support::sync_harness;

namespace {

harness_options dataset_of(std::size_t incidents, std::size_t pairs, std::uint64_t seed = 7) {
    harness_options o;
    o.pairs = pairs;
    o.server.data.seed = seed;
    o.server.data.incidents = incidents;
    o.server.data.pairs = fake_api::sim_pairs(pairs);
    return o;
}

std::int64_t count_runs(SQLite::Database& db, const char* status) {
    SQLite::Statement st(db, "SELECT COUNT(*) FROM sync_runs WHERE status = ?");
    st.bind(1, status);
    st.executeStep();
    return st.getColumn(0).getInt64();
}

}  // namespace

TEST(SyncEngine, LandsEveryIncidentOfTwentyThousandOverFivePairsExactly) {
    sync_harness h(dataset_of(20'000, 5));
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
    EXPECT_EQ(h.stats().incidents_new, 20'000u);
    // Every pair's watermark moved to the end of its window.
    for (const auto& pair : h.settings().sync.pairs)
        EXPECT_EQ(test_support::watermark(h.db(), pair.app_id, pair.tld), h.now_ms()) << pair.app_id;
    EXPECT_EQ(count_runs(h.db(), "failed"), 0);
}

TEST(SyncEngine, SecondPassWritesNothing) {
    sync_harness h(dataset_of(3'000, 2));
    ASSERT_TRUE(h.run_once());
    const auto before = test_support::row_counts(h.db());
    const auto changes_before = h.db().getTotalChanges();
    h.now_ms() += 60'000;
    ASSERT_TRUE(h.run_once());
    EXPECT_EQ(test_support::row_counts(h.db()), before);
    EXPECT_EQ(h.stats().incidents_new, 0u);
    EXPECT_EQ(h.stats().incidents_changed, 0u);
    EXPECT_GT(h.stats().incidents_unchanged, 0u);  // the overlap was re-read...
    // ...and only the watermark and sync_runs rows were written (2 per pair).
    EXPECT_EQ(h.db().getTotalChanges() - changes_before, 2 * 2);
}

// The pairs share a small pool of kept-alive connections: never more than the
// limit on requests in flight, each carrying many requests.
TEST(SyncEngine, FetchesEveryPageOverAFewKeptAliveConnections) {
    auto options = dataset_of(2'000, 3);
    sync_harness h(options);
    h.server().reset_stats();
    ASSERT_TRUE(h.run_once());
    const auto stats = h.server().stats();
    EXPECT_LE(stats.connections_accepted, static_cast<std::uint64_t>(h.settings().limits.max));
    EXPECT_LE(stats.peak_in_flight, static_cast<std::uint32_t>(h.settings().limits.max));
    EXPECT_GE(stats.requests, 4 * stats.connections_accepted);
    EXPECT_TRUE(h.database_matches_dataset());
}

TEST(SyncEngine, RecoversFromEveryTransientFaultWithTheSameResult) {
    auto options = dataset_of(3'000, 2);
    // One request in three answers 500, and the rarer faults add up to about
    // 57% of requests failing. The faults count requests server-wide, so how
    // the two pairs interleave decides which pair gets a streak: 12 attempts
    // ran out once in a loaded full run. At 40 (retries of at most 20 ms) a
    // streak that long is out of reach (0.57^40 < 1e-9).
    options.max_attempts = 40;
    options.server.faults.fail_every_kth = 3;
    options.server.faults.truncate_every_kth = 7;
    options.server.faults.malformed_every_kth = 11;
    options.server.faults.reset_every_kth = 13;
    options.server.faults.rate_limit_every_kth = 17;
    options.server.faults.retry_after_seconds = 0;
    options.server.faults.wrong_content_type_every_kth = 19;
    sync_harness h(options);
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
    const auto stats = h.server().stats();
    EXPECT_GT(stats.status_counts.at(500), 0u);
    EXPECT_GT(stats.status_counts.at(429), 0u);
    EXPECT_GT(stats.truncated, 0u);
    EXPECT_GT(stats.malformed, 0u);
    EXPECT_GT(stats.resets, 0u);
    EXPECT_GE(h.stats().retries, stats.status_counts.at(500) + stats.truncated + stats.malformed);
}

TEST(SyncEngine, ExhaustedRetriesKeepTheWatermarkAndRecordTheFailure) {
    auto options = dataset_of(500, 1);
    options.max_attempts = 3;
    options.server.faults.fail_every_kth = 1;  // every request fails
    sync_harness h(options);
    EXPECT_FALSE(h.run_once());
    const auto& pair = h.settings().sync.pairs.front();
    EXPECT_EQ(test_support::watermark(h.db(), pair.app_id, pair.tld), std::nullopt);
    EXPECT_EQ(count_runs(h.db(), "failed"), 1);
    EXPECT_EQ(h.server().stats().requests, 3u);  // max_attempts, not more
    SQLite::Statement err(h.db(), "SELECT last_error FROM sync_state");
    ASSERT_TRUE(err.executeStep());
    EXPECT_NE(err.getColumn(0).getString().find("gave up after 3 attempts: HTTP 500"), std::string::npos)
        << err.getColumn(0).getString();

    h.server().set_faults({});
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
}

TEST(SyncEngine, RefusedTokenFailsAtOnceWithoutRetries) {
    auto options = dataset_of(200, 2);
    sync_harness h(options);
    h.token() = "not-the-token";
    EXPECT_FALSE(h.run_once());
    EXPECT_EQ(h.server().stats().requests, 2u);  // one per pair: no retry storm
    EXPECT_EQ(h.server().stats().status_counts.at(401), 2u);
    for (const auto& [pair, status] : h.last_status()) EXPECT_EQ(status, isync::sync::pair_status::auth_failed);
    SQLite::Statement st(h.db(), "SELECT COUNT(*) FROM sync_state WHERE auth_failing = 1");
    st.executeStep();
    EXPECT_EQ(st.getColumn(0).getInt(), 2);
    EXPECT_TRUE(test_support::incident_ids(h.db()).empty());
}

TEST(SyncEngine, LiveChangesOnEveryRequestAreAllPresentAfterTheNextPass) {
    auto options = dataset_of(4'000, 2);
    options.page_size = 40;
    options.server.faults.live_changes_per_request = 3;
    sync_harness h(options);
    ASSERT_TRUE(h.run_once());
    EXPECT_GT(h.stats().drift_corrections, 0u);
    EXPECT_GT(h.server().stats().live_changed, 0u);
    // The account stops moving; the next pass must bring everything up to date.
    h.server().set_faults({});
    h.now_ms() += 60'000;
    h.server().set_now_ms(h.now_ms());
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
}

// What retrying cannot fix fails the poll at once (one handshake, not
// retry.max_attempts of them), and says why.
TEST(SyncEngine, ARefusedCertificateFailsThePollWithoutRetrying) {
    auto options = dataset_of(200, 1);
    options.server.tls.certificate = fake_api::server_certificate::unknown_ca;
    options.max_attempts = 6;
    sync_harness h(options);
    EXPECT_FALSE(h.run_once());
    EXPECT_EQ(h.server().stats().tls_handshake_failures, 1u);
    EXPECT_EQ(h.stats().retries, 0u);
    SQLite::Statement st(h.db(), "SELECT last_error FROM sync_state");
    ASSERT_TRUE(st.executeStep());
    EXPECT_NE(st.getColumn(0).getString().find("unknown CA"), std::string::npos) << st.getColumn(0).getString();
}

TEST(SyncEngine, A422FailsThePollWithoutRetryingAndSaysTheApisMessage) {
    auto options = dataset_of(200, 1);
    options.server.refused_app_ids = {{"PXsim000", fake_api::app_refusal::invalid}};
    sync_harness h(options);
    EXPECT_FALSE(h.run_once());
    EXPECT_EQ(h.server().stats().requests, 1u);
    SQLite::Statement st(h.db(), "SELECT last_error FROM sync_state");
    ASSERT_TRUE(st.executeStep());
    EXPECT_NE(st.getColumn(0).getString().find("HTTP 422: the API refused the request: Invalid appId PXsim000"),
              std::string::npos)
        << st.getColumn(0).getString();
}

// A search backend behind the API refuses pages past skip + take = 1,000
// (Elasticsearch's max_result_window, lowered): the engine splits the window
// until each part's walk stays above the bound, learns the bound for later
// slices, and lands everything without a failed run.
TEST(SyncEngine, ARefusedDeepOffsetSplitsTheWindowInsteadOfFailingThePair) {
    auto options = dataset_of(12'000, 1);
    options.server.max_result_window = 1'000;
    sync_harness h(options);
    h.settings().page_size = 100;
    h.settings().sync.slice_incidents = 5'000;  // three parts of ~4,000, each deeper than the bound
    h.server().reset_stats();
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
    EXPECT_EQ(count_runs(h.db(), "failed"), 0);
    // Learned from the first part's refusals (one batch of pages fetched at
    // once): the later parts are split before their walks reach the bound.
    // Without learning, each of the three parts would be refused in turn.
    const auto stats = h.server().stats();
    const auto refused = stats.status_counts.contains(400) ? stats.status_counts.at(400) : 0;
    EXPECT_GT(refused, 0u);
    EXPECT_LE(refused, 16u);
}

// ------------------------------------------------------------------ a limited, distant API

// The API takes N requests at once and refuses more with 429. With the
// daemon's ceiling at N, it is never refused and uses the N it has.
TEST(SyncEngine, AtTheServersLimitNoRequestIsRefusedAndTheLimitIsUsed) {
    auto options = dataset_of(3'000, 2);
    options.server.link.max_in_flight = 3;
    options.server.link.latency = std::chrono::milliseconds(20);
    sync_harness h(options);
    h.settings().limits = {.initial = 3, .min = 1, .max = 3};
    h.server().reset_stats();
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
    const auto stats = h.server().stats();
    EXPECT_EQ(stats.refused_429, 0u);
    EXPECT_LE(stats.peak_in_flight, 3u);
    EXPECT_GE(h.source_stats().peak_in_flight, 2);  // pages of a slice went out together
}

// The API states its budget (X-RateLimit-Remaining and -Reset, as the
// contract's sibling API does): the daemon spends it, then waits for the
// reset, so no 429 comes at all, and every incident lands.
TEST(SyncEngine, AStatedRateLimitIsKeptWithoutA429) {
    auto options = dataset_of(3'000, 2);
    options.server.link.rate_limit = 25;
    // A window long enough that 25 requests fit in it on a loaded CI machine,
    // so the budget binds however slow the build: the first window runs dry.
    options.server.link.rate_window = std::chrono::milliseconds(1'500);
    sync_harness h(options);
    h.settings().page_size = 50;  // ~64 requests: three windows at least
    h.settings().limits = {.initial = 4, .min = 1, .max = 16};
    h.server().reset_stats();
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
    const auto stats = h.server().stats();
    EXPECT_EQ(stats.rate_limited_429, 0u);
    EXPECT_GE(stats.requests, 60u);
    // It did wait for a reset. Not "two waits": on a slow machine a later
    // window can end by itself before its budget is spent (seen in CI).
    EXPECT_GE(h.source_stats().budget_waits, 1u);
}

// Above the server's limit, the adaptive limit comes down to it: a few 429s,
// every incident lands, and each 429's Retry-After pauses every pair.
TEST(SyncEngine, AboveTheServersLimitTheLimitComesDownAndEveryPairPauses) {
    auto options = dataset_of(8'000, 3);
    options.server.link.max_in_flight = 2;
    options.server.link.retry_after_seconds = 1;
    options.server.link.latency = std::chrono::milliseconds(20);
    options.max_attempts = 20;
    sync_harness h(options);
    h.settings().limits = {.initial = 8, .min = 1, .max = 16};
    h.settings().retry.max_delay = std::chrono::seconds(2);  // Retry-After is honoured up to this
    h.server().reset_stats();
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(h.run_once());
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(h.database_matches_dataset());
    const auto stats = h.server().stats();
    EXPECT_GT(stats.refused_429, 0u);
    EXPECT_GE(h.source_stats().limit_decreases, 1u);
    EXPECT_LE(h.source_stats().limit, 3);  // the cap, or one above it while probing
    // During a pause nothing is sent, so the next 429 comes only after it:
    // the pauses add up (a lower bound, which a slow machine cannot break).
    ASSERT_GE(h.source_stats().pauses, 1u);
    EXPECT_GE(elapsed, std::chrono::milliseconds(900) * h.source_stats().pauses);
    // Refusals: the first burst (the limit starts at 8 against a server that
    // takes 2), then rarely: a probe at the refused limit every ten round trips.
    EXPECT_LE(stats.refused_429, 8 + stats.requests / 20) << stats.requests << " requests";
}
