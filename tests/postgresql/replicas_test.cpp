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

    std::vector<std::unique_ptr<test_support::subprocess>> daemons;
    for (int i = 0; i < 3; ++i)
        daemons.push_back(f.start("run", fmt::format("d{}", i), {fmt::format("HUMAN_API_TOKEN=token-d{}", i)}));
    const auto owner_of = [&](int i) -> std::string {
        // Before the first daemon has migrated, sync_daemons does not exist.
        if (conn->exec("SELECT to_regclass('sync_daemons') IS NULL").text(0, 0) == "t") return "";
        auto r = conn->exec("SELECT owner FROM sync_daemons WHERE pid = $1", {std::to_string(daemons[i]->pid())});
        return r.rows() == 1 ? std::string(r.text(0, 0)) : std::string();
    };
    ASSERT_TRUE(wait_for([&] { return !owner_of(0).empty() && !owner_of(1).empty() && !owner_of(2).empty(); }, 20s))
        << "the three daemons never all registered\n"
        << f.output("d0") << f.output("d1") << f.output("d2");
    const std::string d0 = owner_of(0), d1 = owner_of(1), d2 = owner_of(2);

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

}  // namespace
