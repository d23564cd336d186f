// Pair discovery (sync.discover) end to end: the daemon as a process, the
// fake API's GET /v1/account-settings changing under it.

#include "fake_api/account.hpp"
#include "ops/progress_file.hpp"
#include "support/daemon_fixture.hpp"
#include "support/daemon_probe.hpp"
#include "support/db_reader.hpp"

#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <set>
#include <string>

using test_support::daemon_fixture;
using test_support::daemon_options;
using test_support::wait_until;
using namespace std::chrono_literals;

namespace {

// Requests the fake API has seen whose target contains `needle`.
std::size_t requests_for(daemon_fixture& f, const std::string& needle) {
    std::size_t n = 0;
    for (const auto& t : f.server().stats().targets) n += t.find(needle) != std::string::npos;
    return n;
}

bool caught_up(daemon_fixture& f, const isync::config::pair& p) {
    try {
        const auto wm = test_support::watermark(*f.open_db(), p.app_id, p.tld);
        return wm && *wm >= f.data_end_ms();
    } catch (const std::exception&) {
        return false;  // the database may not exist yet
    }
}

std::set<std::string> stored_app_ids(daemon_fixture& f) {
    std::set<std::string> out;
    auto db = f.open_db();
    SQLite::Statement st(*db, "SELECT DISTINCT app_id FROM incidents");
    while (st.executeStep()) out.insert(st.getColumn(0).getString());
    return out;
}

daemon_options discovering(std::size_t pairs, std::string more_sync_yaml = "") {
    daemon_options o;
    o.pairs = pairs;
    o.incidents = 1'500;
    o.extra_sync_yaml = "  discover: true\n" + more_sync_yaml;
    return o;
}

}  // namespace

TEST(Discovery, RunFollowsTheAccountAsApplicationsAndDomainsComeAndGoAndKeepsItsPairsWhenDiscoveryFails) {
    daemon_fixture f(discovering(3, "  discover_interval: 200ms\n"));
    const auto served = f.pairs();  // PXsim000..002, one domain each
    f.pairs().clear();              // nothing listed: discovery finds them all
    f.write_config();
    f.pairs() = served;  // what database_matches_dataset() compares
    auto daemon = f.start("run", "run");
    ASSERT_TRUE(
        wait_until([&] { return caught_up(f, served[0]) && caught_up(f, served[1]) && caught_up(f, served[2]); }, 60s))
        << daemon->stderr_text();
    EXPECT_EQ(requests_for(f, "appId=PXsimoff"), 0u) << "a disabled application is never polled";
    EXPECT_TRUE(f.database_matches_dataset());

    // The account changes: PXsim001 is switched off, PXsim000 gains a domain.
    auto apps = fake_api::applications_of(served);
    apps[0].domains.push_back("new.example");
    apps[1].enabled = false;
    f.server().set_applications(apps);
    const isync::config::pair added{"PXsim000", "new.example"};
    ASSERT_TRUE(wait_until(
        [&] {
            return daemon->stderr_text().find("PXsim001/site001.example: removed from discovery's list") !=
                       std::string::npos &&
                   test_support::watermark(*f.open_db(), added.app_id, added.tld).has_value();
        },
        30s))
        << daemon->stderr_text();
    // Once removed, never asked again (three more discoveries and a poll of the new pair later).
    const auto removed_requests = requests_for(f, "appId=PXsim001");
    const auto discoveries = f.server().stats().account_settings_requests;
    const auto new_requests = requests_for(f, "tld=new.example");
    ASSERT_TRUE(wait_until(
        [&] {
            return f.server().stats().account_settings_requests >= discoveries + 3 &&
                   requests_for(f, "tld=new.example") > new_requests;
        },
        30s));
    EXPECT_EQ(requests_for(f, "appId=PXsim001"), removed_requests);
    EXPECT_TRUE(stored_app_ids(f).contains("PXsim001")) << "a pair that disappears keeps its data";
    // `status` takes the pairs polled from the running daemon: PXsim001 is
    // `removed`, not stale, and the daemon is healthy.
    ASSERT_TRUE(wait_until(
        [&] {
            const auto live = isync::ops::read_live_progress(f.db_path());
            return live && live->polled && live->polled->size() == 3 &&
                   std::find(live->polled->begin(), live->polled->end(), added) != live->polled->end();
        },
        30s));
    EXPECT_EQ(f.run("status", "status", {"--check"}), 0) << f.output("status");
    EXPECT_NE(f.output("status").find("removed"), std::string::npos) << f.output("status");

    // Discovery fails (500, then 401): the last known pairs stay polled.
    for (const unsigned status : {500u, 401u}) {
        const auto failures_before = f.server().stats().status_counts[status];
        f.server().set_faults({.account_settings_status = status});
        ASSERT_TRUE(wait_until(
            [&] {
                const auto err = daemon->stderr_text();
                return f.server().stats().status_counts[status] > failures_before &&
                       err.find("keeping the last known 3 pair(s)") != std::string::npos &&
                       (status != 401 || err.find("may read incidents but not account settings") != std::string::npos);
            },
            30s))
            << daemon->stderr_text();
        const auto polled = requests_for(f, "tld=new.example");
        ASSERT_TRUE(wait_until([&] { return requests_for(f, "tld=new.example") > polled; }, 30s))
            << "the pairs of the last discovery are still polled after a failed one (HTTP " << status << ")";
    }
    auto port = test_support::metrics_port(*daemon);
    ASSERT_TRUE(port);
    const auto metrics = test_support::http_get(*port, "/metrics").body;
    EXPECT_EQ(test_support::sample(metrics, "incident_sync_pairs"), 3);
    EXPECT_GT(test_support::sample(metrics, "incident_sync_discovery_total{result=\"failed\"}"), 0);
    EXPECT_GT(test_support::sample(metrics, "incident_sync_discovery_total{result=\"ok\"}"), 0);

    // It answers again, with PXsim001 back on: it is polled again.
    f.server().set_faults({});
    f.server().set_applications(fake_api::applications_of(served));
    ASSERT_TRUE(wait_until(
        [&] {
            return daemon->stderr_text().find("PXsim001/site001.example: added to discovery's list; polling") !=
                   std::string::npos;
        },
        30s))
        << daemon->stderr_text();

    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(10s), 0);
    EXPECT_EQ(daemon->stderr_text().find(f.server().token()), std::string::npos);
}

TEST(Discovery, OncePollsOnlyThePairsIncludeAndExcludeSelect) {
    // Include three of four applications; exclude one domain, written in
    // another case (domains match ignoring case).
    daemon_fixture f(discovering(4, "  include: [\"PXsim00[0-2]/*\"]\n  exclude: [\"*/SITE001.example\"]\n"));
    f.pairs().clear();
    f.write_config();
    ASSERT_EQ(f.run("once", "once"), 0) << f.output("once");
    EXPECT_EQ(stored_app_ids(f), (std::set<std::string>{"PXsim000", "PXsim002"}));
    for (const char* never : {"appId=PXsim001", "appId=PXsim003", "appId=PXsimoff"})
        EXPECT_EQ(requests_for(f, never), 0u) << never;
    EXPECT_NE(f.output("once").find("2 pair(s) selected by sync.include/sync.exclude"), std::string::npos)
        << f.output("once");
}

TEST(Discovery, OnceWithAFailedDiscoveryStillPollsTheListedPairsAndExitsOne) {
    auto options = discovering(2);
    options.faults.account_settings_status = 401;
    daemon_fixture f(options);
    const auto listed = f.pairs()[0];
    f.pairs() = {listed};
    f.write_config();
    EXPECT_EQ(f.run("once", "once"), 1) << f.output("once");
    EXPECT_TRUE(caught_up(f, listed));
    EXPECT_EQ(stored_app_ids(f), (std::set<std::string>{listed.app_id}));
    const auto out = f.output("once");
    EXPECT_NE(out.find("discovery: GET /v1/account-settings failed: HTTP 401"), std::string::npos) << out;
    EXPECT_NE(out.find("polling only the 1 pair(s) of sync.pairs until it answers"), std::string::npos) << out;
}

TEST(Discovery, CheckConfigOnlineShowsWhatDiscoveryFindsAndWhatItSkips) {
    daemon_fixture f(discovering(3, "  exclude: [\"*/site002.example\"]\n"));
    f.pairs().clear();
    f.write_config();
    ASSERT_EQ(f.run("check-config", "check", {"--online"}), 0) << f.output("check");
    const auto out = f.output("check");
    for (const char* line : {"discovery: 4 application(s); 2 pair(s) selected by sync.include/sync.exclude",
                             "PXsim002 (Simulated PXsim002): site002.example (excluded)",
                             "PXsimoff (Switched off): disabled, not polled; disabled.example",
                             "PXsim000/site000.example: ok", "PXsim001/site001.example: ok"})
        EXPECT_NE(out.find(line), std::string::npos) << line << "\n" << out;
    EXPECT_EQ(out.find("PXsim002/site002.example:"), std::string::npos) << out;

    f.server().set_faults({.account_settings_status = 500});
    EXPECT_EQ(f.run("check-config", "check-failed", {"--online"}), 1);
    EXPECT_NE(f.output("check-failed").find("discovery: FAILED: HTTP 500"), std::string::npos)
        << f.output("check-failed");
}

TEST(Discovery, ADaemonWithOnlyDiscoveryIsNotReadyUntilDiscoveryAnswers) {
    auto options = discovering(2, "  discover_interval: 1h\n");
    options.faults.account_settings_status = 503;
    daemon_fixture f(options);
    f.pairs().clear();
    f.write_config();
    auto daemon = f.start("run", "run");
    std::optional<std::uint16_t> port;
    ASSERT_TRUE(wait_until([&] { return (port = test_support::metrics_port(*daemon)).has_value(); }, 20s));
    // Failed (after its retries), it knows no pair: 503 with the reason.
    ASSERT_TRUE(wait_until(
        [&] { return daemon->stderr_text().find("no pairs to poll until it answers") != std::string::npos; }, 30s))
        << daemon->stderr_text();
    const auto not_ready = test_support::http_get(*port, "/readyz");
    EXPECT_EQ(not_ready.status, 503u);
    EXPECT_NE(not_ready.body.find("pair discovery has not succeeded yet"), std::string::npos) << not_ready.body;
    // It answers again: discovery is retried within sync.interval (1 s here),
    // its pairs sync, and the daemon is ready.
    f.server().set_faults({});
    ASSERT_TRUE(wait_until([&] { return test_support::http_get(*port, "/readyz").status == 200; }, 60s))
        << test_support::http_get(*port, "/readyz").body << daemon->stderr_text();
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(10s), 0);
}
