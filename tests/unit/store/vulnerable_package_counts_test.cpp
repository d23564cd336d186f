// Schema 005: vulnerable_package_counts, the summary behind
// vulnerable_packages. Whatever the store writes (new incidents, rewrites that
// drop, add or repeat CVEs, moved last_seen), a first backfill that fills it
// at its end, a stop in the middle of one, an upgrade from version 4 and an
// UPDATE by hand, it must hold exactly what the GROUP BY over
// vulnerability_ids gives (schema 004's view).
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "store/migrations.hpp"

#include "support/sqlite_store_test.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

using isync::model::incident;
using isync::model::vulnerability;
using isync::store::embedded_migrations;
using isync::store::incident_store;
using isync::store::latest_schema_version;
using isync::store::missing_vulnerable_package_count_triggers;
using isync::store::open_database;
using isync::test::temp_dir;

namespace {

using row = std::vector<std::string>;
using table = std::vector<row>;

constexpr std::int64_t t1 = 1674400000000;

// Every row of `sql`, each value as text ("NULL" for NULL).
table rows(SQLite::Database& db, const std::string& sql) {
    SQLite::Statement st(db, sql);
    table out;
    while (st.executeStep()) {
        row r;
        for (int i = 0; i < st.getColumnCount(); ++i)
            r.push_back(st.getColumn(i).isNull() ? "NULL" : st.getColumn(i).getString());
        out.push_back(std::move(r));
    }
    return out;
}

// The summary as stored, and what it must hold: schema 004's GROUP BY.
const std::string stored_counts =
    "SELECT package, version, vulnerability_id, incidents, last_seen FROM vulnerable_package_counts "
    "ORDER BY package, version, vulnerability_id";
const std::string counted_from_rows =
    "SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen) "
    "FROM vulnerability_ids GROUP BY package, version, vulnerability_id ORDER BY package, version, vulnerability_id";
const std::string view_rows = "SELECT * FROM vulnerable_packages ORDER BY package, version, vulnerability_id";

// An incident with only what the summary reads; raw_json spells out every
// field, so any change is a new content hash and the store rewrites it.
incident make_incident(const std::string& id, const std::string& last_seen, std::vector<vulnerability> vulns) {
    incident inc;
    inc.id = id;
    inc.last_seen = last_seen;
    inc.vulnerabilities = std::move(vulns);
    inc.raw_json = "{\"id\": \"" + id + "\", \"last_seen\": \"" + last_seen + "\", \"vulnerabilities\": [";
    for (const auto& v : inc.vulnerabilities) {
        inc.raw_json += "{\"package\": \"" + v.package.value_or("(null)") + "\", \"version\": \"" +
                        v.version.value_or("(null)") + "\", \"ids\": [";
        for (const auto& cve : v.ids) inc.raw_json += "\"" + cve + "\",";
        inc.raw_json += "]},";
    }
    inc.raw_json += "]}";
    return inc;
}

constexpr const char* id_a = "aaaaaaaaaaaaaaaaaaaaaaaa";
constexpr const char* id_b = "bbbbbbbbbbbbbbbbbbbbbbbb";
constexpr const char* id_c = "cccccccccccccccccccccccc";
constexpr const char* id_d = "dddddddddddddddddddddddd";

// A: lodash@4.17.20 twice (CVE-1 in both: one incident, counted once), and a
// vulnerability without package or version. B shares lodash's CVE-1, later.
std::vector<incident> first_page() {
    return {make_incident(id_a, "2023-01-22T08:00:00.000Z",
                          {{"lodash", "4.17.20", {"CVE-1", "CVE-2"}},
                           {"lodash", "4.17.20", {"CVE-1"}},
                           {std::nullopt, std::nullopt, {"CVE-N"}}}),
            make_incident(id_b, "2023-01-23T08:00:00.000Z", {{"lodash", "4.17.20", {"CVE-1"}}}),
            make_incident(id_c, "2023-01-21T08:00:00.000Z", {{"jquery", "3.4.1", {"CVE-J"}}})};
}

class VulnerablePackageCounts : public isync::test::sqlite_store_test {
protected:
    void commit(const std::vector<incident>& page, std::int64_t now) {
        auto r = store_->commit_page(page, now);
        ASSERT_TRUE(r.has_value()) << r.error().message;
    }
    // The summary is kept (its triggers are all there), holds what the
    // GROUP BY gives, and is what the view shows.
    void expect_exact(const std::string& when) {
        SCOPED_TRACE(when);
        EXPECT_TRUE(missing_vulnerable_package_count_triggers(*db_).empty());
        const table counted = rows(*db_, counted_from_rows);
        EXPECT_EQ(rows(*db_, stored_counts), counted);
        EXPECT_EQ(rows(*db_, view_rows), counted);
        EXPECT_EQ(db_->execAndGet("PRAGMA integrity_check").getString(), "ok");
    }
};

}  // namespace

TEST_F(VulnerablePackageCounts, NewIncidentsAreCountedOnceEach) {
    open_store();
    commit(first_page(), t1);
    expect_exact("after the first page");
    EXPECT_EQ(rows(*db_, stored_counts), (table{{"NULL", "NULL", "CVE-N", "1", "2023-01-22T08:00:00.000Z"},
                                                {"jquery", "3.4.1", "CVE-J", "1", "2023-01-21T08:00:00.000Z"},
                                                {"lodash", "4.17.20", "CVE-1", "2", "2023-01-23T08:00:00.000Z"},
                                                {"lodash", "4.17.20", "CVE-2", "1", "2023-01-22T08:00:00.000Z"}}));

    // Another page: an existing group gains an incident, with an earlier last_seen.
    commit({make_incident(id_d, "2023-01-20T08:00:00.000Z", {{"jquery", "3.4.1", {"CVE-J", "CVE-K"}}})}, t1 + 1000);
    expect_exact("after the second page");
    EXPECT_EQ(rows(*db_, "SELECT incidents, last_seen FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-J'"),
              (table{{"2", "2023-01-21T08:00:00.000Z"}}));
}

TEST_F(VulnerablePackageCounts, ARewrittenIncidentMovesItsCounts) {
    open_store();
    commit(first_page(), t1);
    std::int64_t now = t1;

    // A drops its second lodash (CVE-1 is still in its first) and its NULL package.
    commit({make_incident(id_a, "2023-01-22T08:00:00.000Z", {{"lodash", "4.17.20", {"CVE-1", "CVE-2"}}})}, now += 1000);
    expect_exact("a vulnerability removed");
    EXPECT_EQ(rows(*db_, "SELECT COUNT(*) FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-N'"),
              (table{{"0"}}));
    EXPECT_EQ(rows(*db_, "SELECT incidents FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-1'"),
              (table{{"2"}}));

    // A drops CVE-1 altogether: only B carries it.
    commit({make_incident(id_a, "2023-01-22T08:00:00.000Z", {{"lodash", "4.17.20", {"CVE-2"}}})}, now += 1000);
    expect_exact("a CVE removed");
    EXPECT_EQ(rows(*db_, "SELECT incidents FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-1'"),
              (table{{"1"}}));

    // A adds jquery (shared with C) and lists CVE-2 twice, in two vulnerabilities.
    commit({make_incident(id_a, "2023-01-22T08:00:00.000Z",
                          {{"lodash", "4.17.20", {"CVE-2"}},
                           {"jquery", "3.4.1", {"CVE-J"}},
                           {"lodash", "4.17.20", {"CVE-2", "CVE-1"}}})},
           now += 1000);
    expect_exact("a vulnerability added, a CVE listed twice");
    EXPECT_EQ(rows(*db_, "SELECT vulnerability_id, incidents FROM vulnerable_package_counts ORDER BY vulnerability_id"),
              (table{{"CVE-1", "2"}, {"CVE-2", "1"}, {"CVE-J", "2"}}));

    // A is seen later: every group of A follows its last_seen.
    commit({make_incident(id_a, "2023-01-25T00:00:00.000Z",
                          {{"lodash", "4.17.20", {"CVE-2"}},
                           {"jquery", "3.4.1", {"CVE-J"}},
                           {"lodash", "4.17.20", {"CVE-2", "CVE-1"}}})},
           now += 1000);
    expect_exact("last_seen moved later");
    EXPECT_EQ(rows(*db_, "SELECT DISTINCT last_seen FROM vulnerable_package_counts"),
              (table{{"2023-01-25T00:00:00.000Z"}}));

    // And back earlier than B and C (the API is not supposed to, but the
    // summary must not keep a maximum that no row holds any more).
    commit({make_incident(id_a, "2023-01-01T00:00:00.000Z",
                          {{"lodash", "4.17.20", {"CVE-2"}},
                           {"jquery", "3.4.1", {"CVE-J"}},
                           {"lodash", "4.17.20", {"CVE-2", "CVE-1"}}})},
           now += 1000);
    expect_exact("last_seen moved earlier");
    EXPECT_EQ(rows(*db_, "SELECT vulnerability_id, last_seen FROM vulnerable_package_counts ORDER BY vulnerability_id"),
              (table{{"CVE-1", "2023-01-23T08:00:00.000Z"},
                     {"CVE-2", "2023-01-01T00:00:00.000Z"},
                     {"CVE-J", "2023-01-21T08:00:00.000Z"}}));

    // Twice in one page: the second version replaces the first's rows.
    commit({make_incident(id_b, "2023-01-26T00:00:00.000Z", {{"lodash", "4.17.20", {"CVE-1", "CVE-3"}}}),
            make_incident(id_b, "2023-01-27T00:00:00.000Z", {{"lodash", "4.17.21", {"CVE-3"}}})},
           now += 1000);
    expect_exact("one incident twice in a page");
    EXPECT_EQ(rows(*db_, "SELECT version, incidents FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-3'"),
              (table{{"4.17.21", "1"}}));
}

TEST_F(VulnerablePackageCounts, ABulkLoadFillsItInOnePassAtItsEnd) {
    open_store();
    store_->defer_indexes_while_empty();
    ASSERT_TRUE(store_->indexes_deferred());
    commit(first_page(), t1);
    // While deferred: no trigger runs per row, the table is left empty, and
    // the view still gives the right rows (from vulnerability_ids).
    EXPECT_EQ(missing_vulnerable_package_count_triggers(*db_).size(),
              isync::store::vulnerable_package_count_triggers.size());
    EXPECT_EQ(rows(*db_, "SELECT COUNT(*) FROM vulnerable_package_counts"), (table{{"0"}}));
    EXPECT_EQ(rows(*db_, view_rows), rows(*db_, counted_from_rows));
    EXPECT_EQ(rows(*db_, view_rows).size(), 4u);

    store_->build_deferred_indexes();
    EXPECT_FALSE(store_->indexes_deferred());
    expect_exact("after the build");
    EXPECT_EQ(rows(*db_, stored_counts).size(), 4u);

    // From now on the triggers keep it.
    commit({make_incident(id_c, "2023-01-24T08:00:00.000Z", {{"lodash", "4.17.20", {"CVE-1"}}})}, t1 + 1000);
    expect_exact("a rewrite after the build");
    EXPECT_EQ(rows(*db_, "SELECT incidents FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-1'"),
              (table{{"3"}}));
}

TEST_F(VulnerablePackageCounts, AStopInTheMiddleOfABulkLoadRestoresItAtTheNextStart) {
    open_store();
    store_->defer_indexes_while_empty();
    commit(first_page(), t1);  // then the daemon stops before its pass is over
    open_store();
    EXPECT_FALSE(missing_vulnerable_package_count_triggers(*db_).empty());
    EXPECT_EQ(rows(*db_, view_rows), rows(*db_, counted_from_rows));  // right, if slower, meanwhile

    store_->defer_indexes_while_empty();  // what the daemon does at start
    EXPECT_FALSE(store_->indexes_deferred());
    expect_exact("at the next start");
    EXPECT_EQ(rows(*db_, stored_counts).size(), 4u);

    commit({make_incident(id_d, "2023-01-24T08:00:00.000Z", {{"jquery", "3.4.1", {"CVE-J"}}})}, t1 + 1000);
    expect_exact("a page after the restart");
    EXPECT_EQ(rows(*db_, "SELECT incidents FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-J'"),
              (table{{"2"}}));
}

TEST_F(VulnerablePackageCounts, AnUpgradeFromVersion4FillsIt) {
    table before;
    {
        // A version-4 database as an older incident-syncd wrote it: CVE rows
        // with their copies of package, version and last_seen.
        SQLite::Database v4(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        sqlite3_create_function(
            v4.getHandle(), "isync_content_hash", 1, SQLITE_UTF8, nullptr,
            [](sqlite3_context* ctx, int, sqlite3_value**) { sqlite3_result_int64(ctx, 0); }, nullptr, nullptr);
        for (const auto& m : embedded_migrations())
            if (m.version <= 4) v4.exec(std::string(m.sql));
        v4.exec("PRAGMA user_version=4");
        v4.exec(R"sql(
INSERT INTO vulnerability_ids (incident_key, vulnerability_ordinal, vulnerability_id, package, version,
                               incident_last_seen)
VALUES (1, 0, 'CVE-A', 'lodash', '4.17.20', '2023-01-22T08:00:00.000Z'),
       (1, 1, 'CVE-A', 'lodash', '4.17.20', '2023-01-22T08:00:00.000Z'),
       (1, 0, 'CVE-B', 'lodash', '4.17.20', '2023-01-22T08:00:00.000Z'),
       (1, 2, 'CVE-N', NULL, NULL, '2023-01-22T08:00:00.000Z'),
       (2, 0, 'CVE-A', 'lodash', '4.17.20', '2023-01-23T08:00:00.000Z'),
       (2, 1, 'CVE-N', NULL, NULL, NULL),
       (3, 0, 'CVE-N', NULL, NULL, '2023-01-24T08:00:00.000Z'),
       (3, 1, 'CVE-J', 'jquery', NULL, '2023-01-24T08:00:00.000Z');
)sql");
        before = rows(v4, view_rows);
    }
    open_store();
    ASSERT_EQ(db_->execAndGet("PRAGMA user_version").getInt(), latest_schema_version());
    expect_exact("after the upgrade");
    EXPECT_EQ(rows(*db_, stored_counts), before);
    EXPECT_EQ(before, (table{{"NULL", "NULL", "CVE-N", "3", "2023-01-24T08:00:00.000Z"},
                             {"jquery", "NULL", "CVE-J", "1", "2023-01-24T08:00:00.000Z"},
                             {"lodash", "4.17.20", "CVE-A", "2", "2023-01-23T08:00:00.000Z"},
                             {"lodash", "4.17.20", "CVE-B", "1", "2023-01-22T08:00:00.000Z"}}));

    // The NULL groups are kept one row each by the triggers too.
    db_->exec(
        "INSERT INTO vulnerability_ids VALUES (4, 0, 'CVE-N', NULL, NULL, '2023-01-25T00:00:00.000Z'), "
        "(4, 1, 'CVE-J', 'jquery', NULL, NULL)");
    expect_exact("rows added to the NULL groups");
    db_->exec("DELETE FROM vulnerability_ids WHERE incident_key IN (3, 4)");
    expect_exact("rows removed from the NULL groups");
    EXPECT_EQ(rows(*db_, "SELECT COUNT(*) FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-J'"),
              (table{{"0"}}));
}

TEST_F(VulnerablePackageCounts, AnUpdateByHandCountsBothGroupsAgain) {
    // The daemon never updates CVE rows; a person or a later migration may.
    open_store();
    commit(first_page(), t1);
    expect_exact("before");
    db_->exec(
        "UPDATE vulnerability_ids SET package = 'lodash-es' WHERE vulnerability_id = 'CVE-1' "
        "AND vulnerability_ordinal = 1");
    expect_exact("one of A's two CVE-1 rows moved to another package");
    EXPECT_EQ(rows(*db_,
                   "SELECT package, incidents FROM vulnerable_package_counts WHERE vulnerability_id = 'CVE-1' "
                   "ORDER BY package"),
              (table{{"lodash", "2"}, {"lodash-es", "1"}}));
    db_->exec(
        "UPDATE vulnerability_ids SET incident_last_seen = '2024-01-01T00:00:00.000Z' "
        "WHERE vulnerability_id = 'CVE-J'");
    expect_exact("last_seen updated");
    db_->exec("UPDATE vulnerability_ids SET incident_key = 9 WHERE incident_key = 1 AND vulnerability_ordinal = 0");
    expect_exact("rows moved to another incident");
    db_->exec("UPDATE vulnerability_ids SET version = NULL");
    expect_exact("every row at once");
}

TEST_F(VulnerablePackageCounts, DeclaresNoConstraintThatATriggerCouldBreak) {
    // A UNIQUE or NOT NULL here would make SQLite keep a statement journal
    // for every statement that writes vulnerability_ids (schema 005 says what
    // that cost); the triggers keep one row per group instead.
    open_store();
    EXPECT_EQ(rows(*db_, "SELECT name FROM pragma_table_info('vulnerable_package_counts') WHERE \"notnull\" OR pk"),
              table{});
    EXPECT_EQ(rows(*db_, "SELECT name FROM pragma_index_list('vulnerable_package_counts') WHERE \"unique\""), table{});
    EXPECT_EQ(rows(*db_, "SELECT COUNT(*) FROM pragma_index_list('vulnerable_package_counts')"), (table{{"2"}}));
}
