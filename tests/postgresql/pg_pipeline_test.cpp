// pg_connection's pipeline: a deferred statement goes to the server at once
// and runs there while the caller goes on; its result is read with the next
// exec(). What can go wrong with that: a statement first prepared inside a
// pipeline that failed, a rollback with statements already sent, and a
// pipeline whose results outgrow the socket buffers before anyone reads them.

#include "pgstore/pg_connection.hpp"
#include "postgresql/pg_test_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

using isync::pgstore::pg_connection;

namespace {

std::string backend_pid(pg_connection& c) { return std::string(c.exec("SELECT pg_backend_pid()").text(0, 0)); }

// Whether the backend `pid` holds advisory lock `key`, seen from another session.
bool holds_advisory_lock(pg_connection& observer, const std::string& pid, const std::string& key) {
    return observer
               .exec(
                   "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1::int "
                   "AND objid = $2::bigint",
                   {pid, key})
               .int64(0, 0) == 1;
}

TEST(PostgresqlPipeline, ADeferredStatementRunsOnTheServerBeforeTheNextExec) {
    pg_test::fresh_database db;
    auto conn = db.connect();
    auto observer = db.connect();
    const std::string pid = backend_pid(*conn);
    const auto round_trips_before = conn->round_trips();
    conn->defer({"BEGIN", {}});
    conn->defer({"SELECT pg_advisory_xact_lock($1::bigint)", {"4242"}});
    // No exec() yet: the lock can only be taken if the statement was sent.
    // Polled until a deadline (the server runs it asynchronously).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    bool seen = false;
    while (!(seen = holds_advisory_lock(*observer, pid, "4242")) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_TRUE(seen) << "the deferred statement did not reach the server before the next exec()";
    EXPECT_EQ(conn->exec("SELECT 7").int64(0, 0), 7);  // reads the pipeline's results, then its own
    conn->exec("COMMIT");
    EXPECT_FALSE(holds_advisory_lock(*observer, pid, "4242"));
    EXPECT_EQ(conn->round_trips() - round_trips_before, 2) << "the pipeline's one exec, then COMMIT";
}

TEST(PostgresqlPipeline, AStatementFirstPreparedInAFailedPipelineIsPreparedAgainNextTime) {
    pg_test::fresh_database db;
    auto conn = db.connect();
    conn->exec("CREATE TABLE t (x int PRIMARY KEY)");
    const std::string insert = "INSERT INTO t (x) VALUES ($1::int)";
    conn->defer({"BEGIN", {}});
    conn->defer({"SELECT no_such_column FROM t WHERE x = $1::int", {"1"}});  // its prepare fails
    conn->defer({insert, {"1"}});  // first use: prepared in the pipeline, after the failure (so never)
    EXPECT_ANY_THROW(conn->exec("COMMIT"));
    if (conn->transaction_open()) conn->exec("ROLLBACK");
    // The same statement in the next transaction: prepared again, not
    // executed under a name the server never made.
    conn->defer({"BEGIN", {}});
    conn->defer({insert, {"2"}});
    conn->exec("COMMIT");
    EXPECT_EQ(conn->exec("SELECT count(*) FROM t WHERE x = 2").int64(0, 0), 1);
    EXPECT_EQ(conn->exec("SELECT count(*) FROM t").int64(0, 0), 1);
}

TEST(PostgresqlPipeline, DiscardingReadsWhatWasSentAndTheRollbackUndoesIt) {
    pg_test::fresh_database db;
    auto conn = db.connect();
    conn->exec("CREATE TABLE t (x int PRIMARY KEY)");
    bool checked = false;
    conn->defer({"BEGIN", {}});
    conn->defer({"INSERT INTO t (x) VALUES ($1::int)", {"1"}, [&](const auto&) { checked = true; }});
    conn->defer({"INSERT INTO t (x) VALUES ($1::int)", {"1"}});  // a duplicate key: fails, must not throw here
    conn->discard_deferred();
    EXPECT_FALSE(checked) << "a discarded statement's check ran";
    ASSERT_TRUE(conn->transaction_open()) << "the BEGIN was sent and ran";
    conn->exec("ROLLBACK");
    EXPECT_FALSE(conn->transaction_open());
    EXPECT_EQ(conn->exec("SELECT count(*) FROM t").int64(0, 0), 0);
    // Nothing was left in the connection: a plain exec and a new pipeline work.
    conn->defer({"BEGIN", {}});
    conn->defer({"INSERT INTO t (x) VALUES ($1::int)", {"3"}});
    conn->exec("COMMIT");
    EXPECT_EQ(conn->exec("SELECT count(*) FROM t").int64(0, 0), 1);
}

// 300 results of 256 KiB each (75 MiB) sent before any is read: far more
// than the socket buffers hold. The server blocks writing them unless the
// client reads while it sends; then both would wait forever (ctest's timeout
// ends such a run as a failure).
TEST(PostgresqlPipeline, ResultsLargerThanTheSocketBuffersDoNotStallIt) {
    pg_test::fresh_database db;
    auto conn = db.connect();
    int rows_seen = 0;
    conn->defer({"BEGIN", {}});
    for (int i = 0; i < 300; ++i)
        conn->defer({"SELECT repeat('x', $1::int) AS filler", {"262144"}, [&](const auto& r) {
                         if (r.rows() == 1 && r.text(0, 0).size() == 262144) ++rows_seen;
                     }});
    conn->exec("COMMIT");
    EXPECT_EQ(rows_seen, 300);
}

}  // namespace
