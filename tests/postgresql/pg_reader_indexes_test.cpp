// The reader indexes a first backfill leaves out on PostgreSQL: dropped only
// while the database holds no incident, built when the daemon is idle (by
// one daemon at a time), and then the schema's own indexes again.

#include "pgstore/pg_reader_indexes.hpp"
#include "pgstore/pg_store.hpp"
#include "postgresql/pg_test_server.hpp"
#include "store/migrations.hpp"
#include "support/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

using isync::pgstore::missing_pg_deferred_indexes;
using isync::pgstore::pg_connection;
using isync::pgstore::pg_deferred_indexes;
using isync::pgstore::pg_store;

namespace {

std::unique_ptr<pg_store> open_store(const pg_test::fresh_database& db) {
    auto opened = pg_store::open({db.url()});
    if (!opened) throw std::runtime_error(opened.error().message);
    return std::move(*opened);
}

// indexname -> indexdef of the indexes deferred, as PostgreSQL describes them.
std::map<std::string, std::string> definitions(pg_connection& conn) {
    std::map<std::string, std::string> out;
    auto r = conn.exec("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()");
    for (int i = 0; i < r.rows(); ++i)
        for (const auto& index : pg_deferred_indexes)
            if (r.text(i, 0) == index.name) out[std::string(r.text(i, 0))] = std::string(r.text(i, 1));
    return out;
}

void write_one_incident(pg_store& store) {
    ASSERT_TRUE(store.begin());
    std::vector<isync::model::incident> page{isync::test::documented_example_incident()};
    auto w = store.write_page(page, 1'700'000'000'000);
    ASSERT_TRUE(w) << w.error().message;
    ASSERT_TRUE(store.commit());
}

TEST(PostgresqlReaderIndexes, AreTheSchemasOwnIndexes) {
    const auto& first = isync::store::embedded_postgresql_migrations().front();
    for (const auto& index : pg_deferred_indexes)
        EXPECT_TRUE(isync::test::contains(first.sql, std::string(index.definition) + ";")) << index.name;
}

TEST(PostgresqlReaderIndexes, AFirstBackfillBuildsThemWhenIdleAndAFilledDatabaseKeepsThem) {
    pg_test::fresh_database untouched, db;
    auto reference = open_store(untouched);
    auto conn = db.connect();
    auto store = open_store(db);
    const auto as_made = definitions(*untouched.connect());
    ASSERT_EQ(as_made.size(), pg_deferred_indexes.size());

    store->defer_indexes_while_empty();
    EXPECT_EQ(missing_pg_deferred_indexes(*conn).size(), pg_deferred_indexes.size());
    write_one_incident(*store);
    store->on_idle();
    EXPECT_TRUE(missing_pg_deferred_indexes(*conn).empty());
    EXPECT_EQ(definitions(*conn), as_made);

    // A database that holds incidents keeps them: a restart drops nothing.
    auto restarted = open_store(db);
    restarted->defer_indexes_while_empty();
    EXPECT_EQ(definitions(*conn), as_made);
}

TEST(PostgresqlReaderIndexes, OneDaemonBuildsThemWhileTheOthersSkip) {
    pg_test::fresh_database db;
    auto store = open_store(db);
    store->defer_indexes_while_empty();
    write_one_incident(*store);

    // Another daemon is building them (it holds the lock): this one skips,
    // without waiting for it.
    auto other = db.connect();
    other->exec("BEGIN");
    other->exec("SELECT pg_advisory_xact_lock(7305486150612930818)");
    auto conn = db.connect();
    EXPECT_EQ(isync::pgstore::build_missing_pg_reader_indexes(*conn), 0);
    EXPECT_EQ(missing_pg_deferred_indexes(*conn).size(), pg_deferred_indexes.size());
    other->exec("COMMIT");
    EXPECT_EQ(isync::pgstore::build_missing_pg_reader_indexes(*conn), static_cast<int>(pg_deferred_indexes.size()));
    EXPECT_TRUE(missing_pg_deferred_indexes(*conn).empty());
    EXPECT_EQ(isync::pgstore::build_missing_pg_reader_indexes(*conn), 0);  // nothing left to build
}

}  // namespace
