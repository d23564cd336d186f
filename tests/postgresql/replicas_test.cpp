// Three daemons, one PostgreSQL database, one fake API: together they sync
// every pair, no pair is polled by two at once, a daemon killed with SIGKILL
// mid-backfill has its pairs taken over within the lease time, one stopped
// with SIGSTOP past its lease moves no watermark when it wakes, and in the
// end the database equals the dataset.
//
// Waits are for conditions the database shows (every 50 ms, with a deadline),
// never fixed sleeps.

#include "postgresql/pg_test_server.hpp"
#include "support/daemon_fixture.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test_support::daemon_fixture;
using test_support::daemon_options;

namespace {

// Polls `condition` until it holds or `deadline` passes.
bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(50ms);  // a poll interval, not a synchronization
    }
    return condition();
}

// Starts `count` daemons `run`, daemon i as "d<i>" with its own token
// token-d<i> (so that the fake API tells their requests apart).
std::vector<std::unique_ptr<test_support::subprocess>> start_replicas(daemon_fixture& f, int count) {
    std::vector<std::unique_ptr<test_support::subprocess>> daemons;
    for (int i = 0; i < count; ++i)
        daemons.push_back(f.start("run", fmt::format("d{}", i), {fmt::format("HUMAN_API_TOKEN=token-d{}", i)}));
    return daemons;
}

// The daemon's name in sync_daemons, or "" before it has registered.
std::string owner_of(isync::pgstore::pg_connection& conn, const test_support::subprocess& daemon) {
    // Before the first daemon has migrated, sync_daemons does not exist.
    if (conn.exec("SELECT to_regclass('sync_daemons') IS NULL").text(0, 0) == "t") return "";
    auto r = conn.exec("SELECT owner FROM sync_daemons WHERE pid = $1", {std::to_string(daemon.pid())});
    return r.rows() == 1 ? std::string(r.text(0, 0)) : std::string();
}

TEST(Replicas, ThreeDaemonsShareThePairsSurviveAKillAndAStopAndEndExact) {
    pg_test::fresh_database db;
    daemon_options o;
    o.incidents = 6'000;
    o.pairs = 6;
    o.interval = "1s";
    o.faults.delay = 15ms;                           // a backfill that lasts long enough to be interrupted
    o.extra_sync_yaml = "  slice_incidents: 200\n";  // the fixture sets concurrency: 2
    o.extra_database_yaml = "  url: " + db.url() + "\n  lease_ttl: 3s\n";
    // Each daemon its own token, so that the fake API tells their requests
    // apart and counts a pair requested by two at once (pair_overlaps).
    o.other_tokens = {"token-d0", "token-d1", "token-d2"};
    daemon_fixture f(o);
    auto conn = db.connect();

    auto daemons = start_replicas(f, 3);
    const auto owner = [&](int i) { return owner_of(*conn, *daemons[i]); };
    ASSERT_TRUE(wait_for([&] { return !owner(0).empty() && !owner(1).empty() && !owner(2).empty(); }, 20s))
        << "the three daemons never all registered\n"
        << f.output("d0") << f.output("d1") << f.output("d2");
    const std::string d0 = owner(0), d1 = owner(1), d2 = owner(2);

    // Mid-backfill: d0 has committed a slice of its own, and data is missing.
    ASSERT_TRUE(wait_for(
        [&] {
            return conn->exec("SELECT COUNT(*) FROM sync_runs WHERE daemon = $1 AND status = 'ok'", {d0}).int64(0, 0) >
                   0;
        },
        30s))
        << f.output("d0");
    ASSERT_LT(conn->exec("SELECT COUNT(*) FROM incidents").int64(0, 0), 6'000) << "the backfill ended too soon";
    daemons[0]->signal(SIGKILL);
    ASSERT_TRUE(daemons[0]->wait(10s).has_value());

    // Its pairs are taken over, and the backfill completes without it.
    ASSERT_TRUE(wait_for(
        [&] {
            return conn->exec("SELECT COUNT(*) FROM incidents").int64(0, 0) == 6'000 &&
                   conn->exec("SELECT COUNT(*) FROM sync_state WHERE lease_owner = $1", {d0}).int64(0, 0) == 0;
        },
        60s))
        << "d0's pairs were not taken over\n"
        << f.output("d1") << f.output("d2");

    // `status` says which daemon polls which pair.
    ASSERT_EQ(f.run("status", "status", {"--json"}), 0) << f.output("status");
    rapidjson::Document doc;
    doc.Parse(test_support::read_file(f.dir().path() / "status.stdout").c_str());
    ASSERT_TRUE(doc.IsObject()) << f.output("status");
    ASSERT_EQ(doc["pairs"].Size(), 6u);
    for (const auto& p : doc["pairs"].GetArray()) {
        ASSERT_TRUE(p.HasMember("lease_owner")) << f.output("status");
        const std::string owner = p["lease_owner"].GetString();
        EXPECT_TRUE(owner == d1 || owner == d2) << owner;
    }

    // Until now no pair was requested by two daemons at once.
    EXPECT_EQ(f.server().stats().pair_overlaps, 0u);

    // d1 stops past its lease; d2 takes every pair.
    daemons[1]->signal(SIGSTOP);
    ASSERT_TRUE(wait_for(
        [&] {
            return conn->exec("SELECT COUNT(*) FROM sync_state WHERE lease_owner IS DISTINCT FROM $1", {d2})
                       .int64(0, 0) == 0;
        },
        30s))
        << "d2 did not take d1's pairs over";
    const std::string taken_over = std::string(conn->exec("SELECT now()").text(0, 0));
    daemons[1]->signal(SIGCONT);
    // d1 lives on: it renews its heartbeat, and gets its share back in time.
    ASSERT_TRUE(wait_for(
        [&] {
            return conn->exec("SELECT COUNT(*) FROM sync_runs WHERE daemon = $1 AND status = 'ok' AND started_at > $2",
                              {d1, taken_over})
                       .int64(0, 0) > 0;
        },
        30s))
        << f.output("d1");

    for (int i = 1; i < 3; ++i) daemons[i]->signal(SIGTERM);
    for (int i = 1; i < 3; ++i) {
        const auto code = daemons[i]->wait(15s);
        ASSERT_TRUE(code.has_value());
        EXPECT_EQ(*code, 0) << f.output(fmt::format("d{}", i));
    }

    // Nor after: d1, woken past its lease's length by its own clock, sent no
    // request for a pair before it held the lease again.
    EXPECT_EQ(f.server().stats().pair_overlaps, 0u);
    // d1 moved no watermark with a slice begun before it lost its pairs.
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM sync_runs WHERE daemon = $1 AND status = 'ok' AND started_at < $2 "
                         "AND finished_at > $2",
                         {d1, taken_over})
                  .int64(0, 0),
              0);
    // No pair was polled by two daemons at once: the slices each daemon
    // committed for a pair never overlap another daemon's in time.
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM sync_runs a JOIN sync_runs b ON a.app_id = b.app_id AND a.tld = b.tld "
                         "AND a.daemon <> b.daemon AND a.status = 'ok' AND b.status = 'ok' "
                         "AND a.started_at < b.finished_at AND b.started_at < a.finished_at")
                  .int64(0, 0),
              0);
    // Every daemon did some of the work.
    for (const auto& d : {d0, d1, d2})
        EXPECT_GT(conn->exec("SELECT COUNT(*) FROM sync_runs WHERE daemon = $1 AND status = 'ok'", {d}).int64(0, 0), 0)
            << d;
    // The database equals the dataset: every incident, byte for byte, once.
    std::size_t wrong = 0;
    f.server().with_dataset([&](const fake_api::dataset& data) {
        for (std::size_t i = 0; i < data.size(); ++i) {
            auto r = conn->exec("SELECT raw_json FROM incidents WHERE id = $1", {data.id(i)});
            if (r.rows() != 1 || r.text(0, 0) != data.json(i)) ++wrong;
        }
    });
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM incidents").int64(0, 0), 6'000);
    // No watermark ahead of its data: each pair's watermark is at most now,
    // and the clean stops ended every lease.
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM sync_state WHERE watermark_ms IS NULL OR "
                         "watermark_ms > (extract(epoch FROM now()) * 1000)::bigint")
                  .int64(0, 0),
              0);
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM sync_state WHERE lease_owner IS NOT NULL").int64(0, 0), 0);
}

// A pair taken over from a daemon that died starts on the survivor at once,
// even when the survivor's `sync.concurrency` slots are all held by its own
// backfill: a takeover is bounded by database.lease_ttl, not by how long the
// survivor's own polls last.
TEST(Replicas, APairTakenOverDoesNotWaitForTheSurvivorsOwnBackfill) {
    pg_test::fresh_database db;
    daemon_options o;
    o.incidents = 6'000;
    o.pairs = 2;
    o.concurrency = 1;
    o.faults.delay = 200ms;  // with one request in flight, each pair's backfill lasts about 15 s
    o.extra_api_yaml = "  max_in_flight: 1\n";
    o.extra_sync_yaml = "  slice_incidents: 200\n";
    o.extra_database_yaml = "  url: " + db.url() + "\n  lease_ttl: 3s\n";
    o.other_tokens = {"token-d0", "token-d1"};
    daemon_fixture f(o);
    auto conn = db.connect();

    auto daemons = start_replicas(f, 2);
    const auto owner = [&](int i) { return owner_of(*conn, *daemons[i]); };
    ASSERT_TRUE(wait_for([&] { return !owner(0).empty() && !owner(1).empty(); }, 20s))
        << f.output("d0") << f.output("d1");
    const std::string d0 = owner(0), d1 = owner(1);
    // Each daemon holds one pair and has committed a slice of it.
    const auto held_by = [&](const std::string& owner) {
        auto r = conn->exec("SELECT app_id || '/' || tld FROM sync_state WHERE lease_owner = $1", {owner});
        return r.rows() == 1 ? std::string(r.text(0, 0)) : std::string();
    };
    const auto slices_of = [&](const std::string& owner) {
        return conn->exec("SELECT COUNT(*) FROM sync_runs WHERE daemon = $1 AND status = 'ok'", {owner}).int64(0, 0);
    };
    ASSERT_TRUE(wait_for(
        [&] { return !held_by(d0).empty() && !held_by(d1).empty() && slices_of(d0) > 0 && slices_of(d1) > 0; }, 30s))
        << f.output("d0") << f.output("d1");
    const std::string survivors_own = held_by(d0), victims = held_by(d1);
    const auto incidents_of = [&](const std::string& pair) {  // the fixture's pairs have distinct appIds
        return conn->exec("SELECT COUNT(*) FROM incidents WHERE app_id = $1", {pair.substr(0, pair.find('/'))})
            .int64(0, 0);
    };
    const std::int64_t own_total = [&] {
        std::int64_t n = 0;
        f.server().with_dataset([&](const fake_api::dataset& data) {
            const auto slash = survivors_own.find('/');
            const auto own = data.pair_index(survivors_own.substr(0, slash), survivors_own.substr(slash + 1));
            for (std::size_t i = 0; i < data.size(); ++i) n += own && data.pair_of(i) == *own ? 1 : 0;
        });
        return n;
    }();
    ASSERT_GT(own_total, 0);
    ASSERT_LT(incidents_of(survivors_own), own_total) << "the survivor's own backfill ended too soon";

    daemons[1]->signal(SIGKILL);
    ASSERT_TRUE(daemons[1]->wait(10s).has_value());
    const std::string killed_at = std::string(conn->exec("SELECT now()").text(0, 0));
    ASSERT_TRUE(wait_for(
        [&] {
            return conn->exec(
                           "SELECT COUNT(*) FROM sync_runs WHERE daemon = $1 AND status = 'ok' AND "
                           "app_id || '/' || tld = $2 AND finished_at > $3",
                           {d0, victims, killed_at})
                       .int64(0, 0) > 0;
        },
        60s))
        << f.output("d0");
    // The survivor's own backfill, which holds its only slot, is still going.
    EXPECT_LT(incidents_of(survivors_own), own_total) << "the takeover waited for the survivor's own backfill";
    daemons[0]->signal(SIGTERM);
    const auto code = daemons[0]->wait(15s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << f.output("d0");
    EXPECT_EQ(f.server().stats().pair_overlaps, 0u);
}

}  // namespace
