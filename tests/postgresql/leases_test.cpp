// Leases on one PostgreSQL database shared by several stores (as by several
// daemons): a pair is held by one at a time, the daemons alive share the
// pairs evenly, and a store whose lease ended writes nothing. Expiry is made
// by moving the database's own timestamps back, not by waiting.

#include "pgstore/pg_store.hpp"
#include "postgresql/pg_test_server.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

using isync::config::pair;
using isync::pgstore::pg_store;
using isync::store::slice_report;

namespace {

const pair p{"PXa", "a.example"};
const pair q{"PXb", "b.example"};
const pair r{"PXc", "c.example"};
const pair s{"PXd", "d.example"};

std::unique_ptr<pg_store> open_store(const pg_test::fresh_database& db) {
    auto opened = pg_store::open({db.url(), std::nullopt, "incident-sync-tests", std::chrono::seconds(30)});
    if (!opened) throw std::runtime_error(opened.error().message);
    return std::move(*opened);
}

bool claim(pg_store& store, const pair& which, std::size_t total) {
    auto c = store.claim_pair(which, total);
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    return c && *c;
}

// The lease (and the daemon's heartbeat) ended a minute ago, as if the
// daemon had been stopped or cut off that long.
void expire(isync::pgstore::pg_connection& conn, const pg_store& owner) {
    conn.exec("UPDATE sync_state SET lease_expires_at = now() - interval '1 minute' WHERE lease_owner = $1",
              {owner.owner()});
    conn.exec("UPDATE sync_daemons SET last_seen_at = now() - interval '1 minute' WHERE owner = $1", {owner.owner()});
}

// One page of `pair` whose slice ends at to_ms, written as the writer does:
// begin, fence, page, commit. The first error, or "" when it committed.
std::string write_slice_end(pg_store& store, const pair& which, std::int64_t to_ms) {
    if (auto b = store.begin(); !b) return b.error().message;
    if (auto f = store.fence(which); !f) return f.error().message;
    slice_report report;
    report.pair = which;
    report.from_ms = to_ms - 1000;
    report.to_ms = to_ms;
    report.started_ms = to_ms;
    auto incident = isync::test::documented_example_incident();
    std::vector<isync::model::incident> page{incident};
    if (auto w = store.write_page(page, to_ms, &report); !w) return w.error().message;
    if (auto c = store.commit(); !c) return c.error().message;
    return "";
}

TEST(Leases, APairIsHeldByOneStoreAtATime) {
    pg_test::fresh_database db;
    auto a = open_store(db);
    auto b = open_store(db);
    EXPECT_TRUE(claim(*a, p, 2));
    EXPECT_FALSE(claim(*b, p, 2)) << "two daemons hold one pair";
    EXPECT_TRUE(claim(*b, q, 2));
    EXPECT_FALSE(claim(*a, q, 2));
    EXPECT_TRUE(claim(*a, p, 2)) << "renewing a lease one holds";
    auto conn = db.connect();
    auto owners = conn->exec("SELECT lease_owner FROM sync_state ORDER BY app_id");
    ASSERT_EQ(owners.rows(), 2);
    EXPECT_EQ(owners.text(0, 0), a->owner());
    EXPECT_EQ(owners.text(1, 0), b->owner());
}

// A lease is written to last five sixths of lease_ttl (30 s here), leaving
// the rest for the takeover; a refused claim says when the other lease lapses,
// so that the daemon tries again right then, not at its next ninth.
TEST(Leases, ALeaseLastsFiveSixthsOfTheTtlAndARefusedClaimSaysWhenItLapses) {
    pg_test::fresh_database db;
    auto a = open_store(db);
    auto b = open_store(db);
    EXPECT_EQ(a->lease_span(), std::chrono::seconds(25));
    ASSERT_TRUE(claim(*a, p, 2));
    auto conn = db.connect();
    const auto left_ms = [&] {
        return conn
            ->exec(
                "SELECT (extract(epoch FROM lease_expires_at - now()) * 1000)::bigint FROM sync_state "
                "WHERE app_id = $1",
                {p.app_id})
            .int64(0, 0);
    };
    EXPECT_GT(left_ms(), 24'000);
    EXPECT_LE(left_ms(), 25'000);
    EXPECT_FALSE(claim(*b, p, 2));
    EXPECT_GT(b->claim_again_in(), std::chrono::seconds(24));
    EXPECT_LE(b->claim_again_in(), std::chrono::seconds(25));
    conn->exec("UPDATE sync_state SET lease_expires_at = now() + interval '2 seconds' WHERE app_id = $1", {p.app_id});
    EXPECT_FALSE(claim(*b, p, 2));
    EXPECT_GT(b->claim_again_in(), std::chrono::milliseconds(1000));
    EXPECT_LE(b->claim_again_in(), std::chrono::milliseconds(2000));
    // A claim refused because B holds its share: B's share grows when A
    // stops counting as alive, a lease's length after A's last heartbeat.
    EXPECT_TRUE(claim(*b, q, 2));
    EXPECT_FALSE(claim(*b, s, 2));
    EXPECT_GT(b->claim_again_in(), std::chrono::seconds(24));
    EXPECT_LE(b->claim_again_in(), std::chrono::seconds(25));
    conn->exec("UPDATE sync_daemons SET last_seen_at = now() - interval '24 seconds' WHERE owner = $1", {a->owner()});
    EXPECT_FALSE(claim(*b, s, 2));
    EXPECT_LE(b->claim_again_in(), std::chrono::seconds(1));
}

TEST(Leases, AStoreWhoseLeaseWasTakenOverWritesNothing) {
    pg_test::fresh_database db;
    auto a = open_store(db);
    auto b = open_store(db);
    auto conn = db.connect();
    ASSERT_TRUE(claim(*a, p, 1));
    EXPECT_EQ(write_slice_end(*a, p, 1'700'000'000'000), "");

    // A is stopped past its lease; B takes the pair over (a new epoch).
    expire(*conn, *a);
    ASSERT_TRUE(claim(*b, p, 1));
    const auto before = conn->exec("SELECT watermark_ms, (SELECT COUNT(*) FROM sync_runs) FROM sync_state");

    // A wakes up and writes what it had fetched: refused, nothing kept.
    const auto refused = write_slice_end(*a, p, 1'700'000'100'000);
    EXPECT_TRUE(isync::test::contains(refused, "lease on PXa/a.example ended")) << refused;
    EXPECT_FALSE(a->in_transaction());
    const auto after = conn->exec("SELECT watermark_ms, (SELECT COUNT(*) FROM sync_runs) FROM sync_state");
    EXPECT_EQ(after.text(0, 0), before.text(0, 0));
    EXPECT_EQ(after.text(0, 1), before.text(0, 1));
    // And cannot claim it back while B holds it; B writes.
    EXPECT_FALSE(claim(*a, p, 1));
    EXPECT_EQ(write_slice_end(*b, p, 1'700'000'200'000), "");
    EXPECT_EQ(conn->exec("SELECT watermark_ms FROM sync_state").int64(0, 0), 1'700'000'200'000);
    EXPECT_EQ(conn->exec("SELECT daemon FROM sync_runs ORDER BY run_id DESC LIMIT 1").text(0, 0), b->owner());
}

// A claim skips a lease row that another store's write holds (FOR UPDATE
// SKIP LOCKED): it neither waits for that write (which would stall the
// claimer's writer thread) nor takes the pair from under it.
TEST(Leases, AClaimNeitherWaitsForNorTakesAPairWhoseWriteIsInFlight) {
    pg_test::fresh_database db;
    auto a = open_store(db);
    auto b = open_store(db);
    auto conn = db.connect();
    ASSERT_TRUE(claim(*a, p, 1));
    conn->exec("UPDATE sync_daemons SET last_seen_at = now() - interval '1 minute' WHERE owner = $1", {a->owner()});
    ASSERT_TRUE(a->begin());
    ASSERT_TRUE(a->fence(p));
    ASSERT_TRUE(a->watermark(p));  // sends the deferred BEGIN and fence: A holds the lease row until commit
    EXPECT_FALSE(claim(*b, p, 1)) << "taken from under a write in flight";
    ASSERT_TRUE(a->commit());
    // Once the lease truly lapses, B takes it.
    expire(*conn, *a);
    EXPECT_TRUE(claim(*b, p, 1));
}

TEST(Leases, TheDaemonsAliveShareThePairsEvenly) {
    pg_test::fresh_database db;
    auto a = open_store(db);
    for (const auto& each : {p, q, r, s}) EXPECT_TRUE(claim(*a, each, 4)) << "alone, it takes every pair";

    // B starts: every pair is held, so it gets none at first...
    auto b = open_store(db);
    for (const auto& each : {p, q, r, s}) EXPECT_FALSE(claim(*b, each, 4));
    // ... until A's next renewal gives up its idle pairs beyond its share (2
    // of 4), keeping the one it is polling.
    const std::vector<pair> busy{p};
    a->renew_leases(busy, 4);
    int b_got = 0;
    for (const auto& each : {p, q, r, s}) b_got += claim(*b, each, 4);
    EXPECT_EQ(b_got, 2);
    EXPECT_TRUE(claim(*a, p, 4)) << "the pair being polled stays";
    auto conn = db.connect();
    EXPECT_EQ(conn->exec("SELECT COUNT(DISTINCT lease_owner), COUNT(*) FROM sync_state WHERE lease_owner IS NOT NULL")
                  .int64(0, 0),
              2);

    // B dies: its heartbeat and leases lapse, and A takes every pair back.
    expire(*conn, *b);
    for (const auto& each : {p, q, r, s}) EXPECT_TRUE(claim(*a, each, 4));
}

TEST(Leases, AStoreThatStopsCleanlyHandsItsPairsOverAtOnce) {
    pg_test::fresh_database db;
    auto b = open_store(db);
    {
        auto a = open_store(db);
        ASSERT_TRUE(claim(*a, p, 1));
        EXPECT_FALSE(claim(*b, p, 1));
    }
    EXPECT_TRUE(claim(*b, p, 1)) << "a clean stop ends the leases it held";
    EXPECT_EQ(db.connect()->exec("SELECT COUNT(*) FROM sync_daemons").int64(0, 0), 1);
}

TEST(Leases, ADaemonGoneForTenLeasesLeavesTheList) {
    pg_test::fresh_database db;
    auto a = open_store(db);
    auto b = open_store(db);
    ASSERT_TRUE(claim(*a, p, 2));
    ASSERT_TRUE(claim(*b, q, 2));
    auto conn = db.connect();
    conn->exec("UPDATE sync_daemons SET last_seen_at = now() - interval '301 seconds' WHERE owner = $1",
               {b->owner()});  // ten leases of 30 s and a second
    a->renew_leases({}, 2);
    auto left = conn->exec("SELECT owner FROM sync_daemons");
    ASSERT_EQ(left.rows(), 1);
    EXPECT_EQ(left.text(0, 0), a->owner());
}

}  // namespace
