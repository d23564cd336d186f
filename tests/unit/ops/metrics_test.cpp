// /metrics text and /readyz verdicts (sans-io, fake clock).
#include "ops/metrics_text.hpp"
#include "ops/ops_server.hpp"

#include <gtest/gtest.h>

using isync::config::pair;
using isync::sync::pair_health;
using namespace std::chrono_literals;

namespace {
const std::map<pair, isync::sync::pair_progress> no_progress;

isync::ops::readiness check_readiness(const std::map<pair, pair_health>& pairs, std::int64_t now,
                                      std::chrono::milliseconds interval) {
    std::vector<isync::ops::pair_facts> facts;
    for (const auto& [p, h] : pairs)
        facts.push_back(
            {p, true, h.last_success_ms, h.last_error_ms, h.watermark_ms, h.auth_failing, h.poll_started_ms});
    return isync::ops::render_readiness(isync::ops::judge_health(facts, now, {interval, 0ms}));
}
}  // namespace

TEST(Metrics, RendersEveryFamilyWithItsValues) {
    isync::sync::sync_stats s;
    s.requests = 12;
    s.responses_by_status = {{200, 9}, {500, 2}, {429, 1}};
    s.transport_failures = 1;
    s.retries = 4;
    s.pages = 9;
    s.incidents_new = 400;
    s.incidents_changed = 7;
    s.incidents_unchanged = 30;
    s.drift_corrections = 3;
    s.fetches_ok = 6;
    s.fetches_retried = 3;
    s.observe_duration(0.3);
    s.observe_duration(7);
    isync::sync::source_stats source;
    source.limit = 6;
    source.in_flight = 3;
    source.peak_in_flight = 8;
    source.pauses = 2;
    source.budget_waits = 5;
    source.wire_body_bytes = 1000;
    source.decoded_body_bytes = 7000;
    std::map<pair, pair_health> pairs{
        {{"PXa", "a.example"}, {1'000'000, 940'000, false, std::nullopt, std::nullopt}},
        {{"PXb", "b\"q.example"}, {std::nullopt, std::nullopt, true, std::nullopt, std::nullopt}}};
    const auto text = isync::ops::render_metrics({s, pairs, 1'000'000, 4096, 512, no_progress, source});
    for (const char* line : {
             "incident_sync_api_concurrency_limit 6\n",
             "incident_sync_api_requests_in_flight 3\n",
             "incident_sync_api_requests_in_flight_peak 8\n",
             "incident_sync_api_rate_limit_pauses_total 2\n",
             "incident_sync_api_rate_limit_budget_waits_total 5\n",
             "incident_sync_api_body_bytes_received_total 1000\n",
             "incident_sync_api_body_bytes_decoded_total 7000\n",
             "incident_sync_http_responses_total{status_class=\"2xx\"} 9\n",
             "incident_sync_http_responses_total{status_class=\"4xx\"} 1\n",
             "incident_sync_http_responses_total{status_class=\"5xx\"} 2\n",
             "incident_sync_http_responses_total{status_class=\"none\"} 1\n",
             "incident_sync_requests_total 12\n",
             "incident_sync_page_fetches_total{outcome=\"retried\"} 3\n",
             "incident_sync_retries_total 4\n",
             "incident_sync_pages_total 9\n",
             "incident_sync_incidents_upserted_total{result=\"new\"} 400\n",
             "incident_sync_incidents_upserted_total{result=\"unchanged\"} 30\n",
             "incident_sync_drift_corrections_total 3\n",
             "incident_sync_sync_duration_seconds_bucket{le=\"0.5\"} 1\n",
             "incident_sync_sync_duration_seconds_bucket{le=\"10\"} 2\n",
             "incident_sync_sync_duration_seconds_bucket{le=\"+Inf\"} 2\n",
             "incident_sync_sync_duration_seconds_count 2\n",
             "incident_sync_watermark_lag_seconds{app_id=\"PXa\",tld=\"a.example\"} 60.000\n",
             "incident_sync_last_success_timestamp_seconds{app_id=\"PXa\",tld=\"a.example\"} 1000.000\n",
             "incident_sync_last_success_timestamp_seconds{app_id=\"PXb\",tld=\"b\\\"q.example\"} 0.000\n",
             "incident_sync_pair_auth_failing{app_id=\"PXb\",tld=\"b\\\"q.example\"} 1\n",
             "incident_sync_database_size_bytes 4096\n",
             "incident_sync_wal_size_bytes 512\n",
             "# TYPE incident_sync_sync_duration_seconds histogram\n",
         })
        EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line;
    // A pair without a watermark has no lag sample (not a misleading 0).
    EXPECT_EQ(text.find("incident_sync_watermark_lag_seconds{app_id=\"PXb\""), std::string::npos);
}

TEST(Metrics, PairHealthyIsTheReadinessRulePerPairAndLeavesRemovedPairsOut) {
    isync::sync::sync_stats s;
    const std::map<pair, pair_health> pairs;
    const std::int64_t now = 10'000'000;
    const std::vector<isync::ops::pair_facts> facts{
        {{"PXa", "fresh.example"}, true, now - 60'000, std::nullopt, now - 60'000, false, std::nullopt},
        {{"PXa", "stale.example"}, true, now - 3'600'000, std::nullopt, now - 3'600'000, false, std::nullopt},
        {{"PXa", "gone.example"}, false, now - 3'600'000, std::nullopt, now - 3'600'000, false, std::nullopt}};
    const auto verdict = isync::ops::judge_health(facts, now, {5min, 0ms});
    const auto text = isync::ops::render_metrics({s, pairs, now, 0, 0, no_progress, {}, &verdict});
    EXPECT_NE(text.find("incident_sync_pair_healthy{app_id=\"PXa\",tld=\"fresh.example\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("incident_sync_pair_healthy{app_id=\"PXa\",tld=\"stale.example\"} 0\n"), std::string::npos);
    EXPECT_EQ(text.find("gone.example"), std::string::npos) << "a removed pair is not judged";
}

// Daemons sharing a database: which pairs this one holds (1) and which
// another does (0); no samples at all when the database is not shared.
TEST(Metrics, LeaseHeldSaysWhichPairsThisDaemonPolls) {
    isync::sync::sync_stats s;
    const std::map<pair, pair_health> mine{{{"PXa", "a.example"}, {}}};
    const std::set<pair> elsewhere{{"PXb", "b.example"}};
    const auto shared = isync::ops::render_metrics({s, mine, 0, 0, 0, no_progress, {}, nullptr, &elsewhere});
    EXPECT_NE(shared.find("# TYPE incident_sync_pair_lease_held gauge\n"), std::string::npos);
    EXPECT_NE(shared.find("incident_sync_pair_lease_held{app_id=\"PXa\",tld=\"a.example\"} 1\n"), std::string::npos);
    EXPECT_NE(shared.find("incident_sync_pair_lease_held{app_id=\"PXb\",tld=\"b.example\"} 0\n"), std::string::npos);
    const auto alone = isync::ops::render_metrics({s, mine, 0, 0, 0, no_progress, {}});
    EXPECT_EQ(alone.find("incident_sync_pair_lease_held"), std::string::npos);
}

TEST(Readiness, FlipsTo503WhenAPairHasNotSucceededForThreeIntervals) {
    const auto interval = 5min;
    const std::int64_t t0 = 1'700'000'000'000;
    std::map<pair, pair_health> pairs{{{"PXa", "a.example"}, {t0, t0, false, std::nullopt, std::nullopt}},
                                      {{"PXb", "b.example"}, {t0, t0, false, std::nullopt, std::nullopt}}};
    auto at = [&](std::chrono::milliseconds later) { return check_readiness(pairs, t0 + later.count(), interval); };
    EXPECT_TRUE(at(0ms).ready);
    EXPECT_TRUE(at(3 * interval).ready);
    // PXb keeps failing; PXa keeps succeeding.
    pairs[{"PXa", "a.example"}].last_success_ms = t0 + (3 * interval + 1ms).count();
    const auto r = at(3 * interval + 1ms);
    EXPECT_FALSE(r.ready);
    EXPECT_NE(r.reason.find("\"stale\":[\"PXb/b.example\"]"), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find("\"status\":\"not ready\""), std::string::npos) << r.reason;
}

TEST(Readiness, APairNeverSyncedIsNotReady) {
    std::map<pair, pair_health> pairs{{{"PXa", "a.example"}, {}}};
    EXPECT_FALSE(check_readiness(pairs, 0, 5min).ready);
}

TEST(ListenAddress, ParsesTheDocumentedForms) {
    EXPECT_EQ(isync::ops::parse_listen_address("127.0.0.1:9464")->port(), 9464);
    EXPECT_TRUE(isync::ops::parse_listen_address("[::1]:9464")->address().is_v6());
    EXPECT_TRUE(isync::ops::parse_listen_address(":9464")->address().is_unspecified());
    for (const char* bad : {"9464", "localhost:x", "1.2.3.4:70000", "nohost:"})
        EXPECT_FALSE(isync::ops::parse_listen_address(bad)) << bad;
}
