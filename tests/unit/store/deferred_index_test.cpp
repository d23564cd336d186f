// Bulk load: the reader indexes and the vulnerable_package_counts triggers
// that a first backfill leaves out, and that they always come back (after the
// pass, or at the next start after a stop in the middle of one). What the
// summary holds is vulnerable_package_counts_test.cpp's.
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "store/migrations.hpp"

#include "support/sqlite_store_test.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

using isync::store::deferred_indexes;
using isync::store::embedded_migrations;
using isync::store::incident_store;
using isync::store::open_database;
using isync::store::vulnerable_package_count_triggers;
using isync::test::documented_example_incident;
using isync::test::temp_dir;

namespace {

constexpr std::int64_t t1 = 1674400000000;

// The CREATE statement SQLite holds for the `type` named `name`, nullopt when it is absent.
std::optional<std::string> schema_sql(const std::string& path, std::string_view type, std::string_view name) {
    SQLite::Database reader(path, SQLite::OPEN_READONLY);
    SQLite::Statement st(reader, "SELECT sql FROM sqlite_schema WHERE type = ? AND name = ?");
    st.bind(1, std::string(type));
    st.bind(2, std::string(name));
    if (!st.executeStep()) return std::nullopt;
    return st.getColumn(0).getString();
}
std::optional<std::string> index_sql(const std::string& path, std::string_view name) {
    return schema_sql(path, "index", name);
}

// Every trigger of vulnerable_package_counts is there as the schema has it
// (`present`), or none is.
::testing::AssertionResult count_triggers_are(const std::string& path, bool present) {
    for (const auto& trigger : vulnerable_package_count_triggers) {
        const auto sql = schema_sql(path, "trigger", trigger.name);
        if (present && sql != trigger.definition)
            return ::testing::AssertionFailure() << trigger.name << " is missing or differs: " << sql.value_or("");
        if (!present && sql) return ::testing::AssertionFailure() << trigger.name << " is still there";
    }
    return ::testing::AssertionSuccess();
}

// What vulnerable_packages reads: the summary or, while it is deferred, vulnerability_ids.
std::string vulnerable_packages_sql(const std::string& path) {
    return schema_sql(path, "view", "vulnerable_packages").value_or("(none)");
}

std::string_view migration_sql(int version) {
    for (const auto& m : embedded_migrations())
        if (m.version == version) return m.sql;
    return {};
}

// Which index a query on vulnerability_id would use (EXPLAIN QUERY PLAN).
std::string cve_query_plan(const std::string& path) {
    SQLite::Database reader(path, SQLite::OPEN_READONLY);
    SQLite::Statement st(reader,
                         "EXPLAIN QUERY PLAN SELECT incident_key FROM vulnerability_ids WHERE vulnerability_id = 'x'");
    std::string plan;
    while (st.executeStep()) plan += st.getColumn(3).getString() + "\n";
    return plan;
}

class DeferredIndexes : public isync::test::sqlite_store_test {
protected:
    void store_one_incident() {
        auto r = store_->commit_page(std::vector{documented_example_incident()}, t1);
        ASSERT_TRUE(r.has_value()) << r.error().message;
    }
};

}  // namespace

TEST_F(DeferredIndexes, DefinitionsAreTheSchemasOwn) {
    // The store rebuilds these from its own copy of the statement; a schema
    // change to one of them must change the copy too.
    open_store();
    for (const auto& index : deferred_indexes) {
        const auto sql = index_sql(path_, index.name);
        ASSERT_TRUE(sql.has_value()) << index.name << " is not in the migrated schema";
        EXPECT_EQ(*sql, index.definition);
    }
    EXPECT_TRUE(count_triggers_are(path_, true));
    EXPECT_EQ(vulnerable_packages_sql(path_), isync::store::vulnerable_packages_view);
    // The view while deferred is schema 004's, and the fill is schema 005's.
    EXPECT_TRUE(isync::test::contains(migration_sql(4),
                                      std::string(isync::store::vulnerable_packages_view_without_counts) + ";"));
    EXPECT_TRUE(
        isync::test::contains(migration_sql(5), std::string(isync::store::vulnerable_package_counts_fill) + ";"));
}

TEST_F(DeferredIndexes, AnEmptyDatabaseLoadsWithoutThemAndGetsThemBackInOnePass) {
    open_store();
    store_->defer_indexes_while_empty();
    EXPECT_TRUE(store_->indexes_deferred());
    for (const auto& index : deferred_indexes) EXPECT_FALSE(index_sql(path_, index.name)) << index.name;
    EXPECT_TRUE(count_triggers_are(path_, false));
    EXPECT_EQ(vulnerable_packages_sql(path_), isync::store::vulnerable_packages_view_without_counts);
    EXPECT_EQ(cve_query_plan(path_).find("vulnerability_ids_by_id"), std::string::npos);

    store_one_incident();
    store_->build_deferred_indexes();
    EXPECT_FALSE(store_->indexes_deferred());
    for (const auto& index : deferred_indexes) EXPECT_EQ(index_sql(path_, index.name), index.definition);
    EXPECT_TRUE(count_triggers_are(path_, true));
    EXPECT_EQ(vulnerable_packages_sql(path_), isync::store::vulnerable_packages_view);
    EXPECT_NE(cve_query_plan(path_).find("vulnerability_ids_by_id"), std::string::npos) << cve_query_plan(path_);
    // The index holds the rows written while it was away.
    EXPECT_EQ(db_->execAndGet("SELECT COUNT(*) FROM vulnerability_ids INDEXED BY vulnerability_ids_by_id "
                              "WHERE vulnerability_id > ''")
                  .getInt64(),
              db_->execAndGet("SELECT COUNT(*) FROM vulnerability_ids").getInt64());
    EXPECT_EQ(db_->execAndGet("PRAGMA integrity_check").getString(), "ok");
}

TEST_F(DeferredIndexes, ADatabaseThatHoldsIncidentsKeepsThem) {
    open_store();
    store_one_incident();
    const auto changes_before = db_->getTotalChanges();
    store_->defer_indexes_while_empty();
    EXPECT_FALSE(store_->indexes_deferred());
    for (const auto& index : deferred_indexes) EXPECT_EQ(index_sql(path_, index.name), index.definition);
    EXPECT_TRUE(count_triggers_are(path_, true));
    EXPECT_EQ(db_->getTotalChanges(), changes_before);
    store_->build_deferred_indexes();  // nothing was deferred: a no-op
    for (const auto& index : deferred_indexes) EXPECT_EQ(index_sql(path_, index.name), index.definition);
    EXPECT_TRUE(count_triggers_are(path_, true));
    EXPECT_EQ(db_->getTotalChanges(), changes_before);
}

TEST_F(DeferredIndexes, AStopInTheMiddleOfABackfillGetsThemBackAtTheNextStart) {
    open_store();
    store_->defer_indexes_while_empty();
    store_one_incident();  // then the daemon stops before its pass is over
    open_store();
    for (const auto& index : deferred_indexes) EXPECT_FALSE(index_sql(path_, index.name)) << index.name;
    EXPECT_TRUE(count_triggers_are(path_, false));
    store_->defer_indexes_while_empty();  // what the daemon does at start
    EXPECT_FALSE(store_->indexes_deferred());
    for (const auto& index : deferred_indexes) EXPECT_EQ(index_sql(path_, index.name), index.definition);
    EXPECT_TRUE(count_triggers_are(path_, true));
    EXPECT_EQ(vulnerable_packages_sql(path_), isync::store::vulnerable_packages_view);
    EXPECT_EQ(db_->execAndGet("PRAGMA integrity_check").getString(), "ok");
}

TEST_F(DeferredIndexes, ALockedDatabaseLeavesThemDeferredToBeTriedAgain) {
    open_store();
    store_->defer_indexes_while_empty();
    store_one_incident();
    {
        // Another writer holds the lock past the busy timeout: the build fails,
        // is only logged, and stays pending.
        SQLite::Database other(path_, SQLite::OPEN_READWRITE);
        other.exec("BEGIN IMMEDIATE");
        db_->setBusyTimeout(0);
        store_->build_deferred_indexes();
        EXPECT_TRUE(store_->indexes_deferred());
        other.exec("ROLLBACK");
    }
    for (const auto& index : deferred_indexes) EXPECT_FALSE(index_sql(path_, index.name)) << index.name;
    EXPECT_TRUE(count_triggers_are(path_, false));
    EXPECT_EQ(vulnerable_packages_sql(path_), isync::store::vulnerable_packages_view_without_counts);
    store_->build_deferred_indexes();
    EXPECT_FALSE(store_->indexes_deferred());
    for (const auto& index : deferred_indexes) EXPECT_EQ(index_sql(path_, index.name), index.definition);
    EXPECT_TRUE(count_triggers_are(path_, true));
    EXPECT_EQ(vulnerable_packages_sql(path_), isync::store::vulnerable_packages_view);
}

TEST_F(DeferredIndexes, ALostTriggerAloneIsEnoughToBuildTheSummaryAgain) {
    // Whatever left one trigger out (a stop, a person), the next start makes
    // the summary again from the rows rather than trust counts kept without it.
    open_store();
    store_one_incident();
    db_->exec("DROP TRIGGER vulnerable_package_counts_after_delete");
    db_->exec("UPDATE vulnerable_package_counts SET incidents = 99");  // stale, as it would be
    store_->defer_indexes_while_empty();                               // what the daemon does at start
    EXPECT_FALSE(store_->indexes_deferred());
    EXPECT_TRUE(count_triggers_are(path_, true));
    EXPECT_EQ(db_->execAndGet("SELECT COUNT(*) FROM vulnerable_package_counts WHERE incidents = 1").getInt(), 3);
    EXPECT_EQ(db_->execAndGet("SELECT COUNT(*) FROM vulnerable_package_counts").getInt(), 3);
}
