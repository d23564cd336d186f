// Schema 004: the analyst-facing columns (open_high_risk_incidents.script_id,
// incident_history's app, host and title, sync_runs.from_at/to_at), and the
// vulnerable_packages view (read from one index since 004, from the summary
// table vulnerable_package_counts since 005). Checked on a database migrated
// from version 3 with rows in it, and on one the store writes.
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "store/migrations.hpp"
#include "util/timestamp.hpp"

#include "support/sqlite_store_test.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using isync::store::embedded_migrations;
using isync::store::incident_store;
using isync::store::latest_schema_version;
using isync::store::open_database;
using isync::store::slice_report;
using isync::test::contains;
using isync::test::documented_example_incident;
using isync::test::replace_once;
using isync::test::temp_dir;
using isync::util::format_iso8601_ms;

namespace {

using row = std::vector<std::string>;
using table = std::vector<row>;

constexpr std::int64_t t1 = 1674400000000;  // 2023-01-22T15:06:40.000Z

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

std::vector<std::string> columns_of(SQLite::Database& db, const std::string& name) {
    std::vector<std::string> out;
    for (const auto& r : rows(db, "SELECT name FROM pragma_table_info('" + name + "')")) out.push_back(r[0]);
    return out;
}

// A database at schema version 3, made by the embedded migrations 1 to 3 as
// an older incident-syncd made it.
void make_version_3(const std::string& path) {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    // Migration 3 calls the daemon's hash function (on no rows here).
    sqlite3_create_function(
        db.getHandle(), "isync_content_hash", 1, SQLITE_UTF8, nullptr,
        [](sqlite3_context* ctx, int, sqlite3_value**) { sqlite3_result_int64(ctx, 0); }, nullptr, nullptr);
    for (const auto& m : embedded_migrations()) {
        if (m.version > 3) break;
        db.exec(std::string(m.sql));
    }
    db.exec("PRAGMA user_version=3");
}

// The rows a version-3 daemon would have written, shaped to exercise the
// views: a package@version listed twice in one incident with a shared CVE
// (counted once), a vulnerability without package or version, incidents with
// and without a script, under review or not.
void fill_version_3(const std::string& path) {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(R"sql(
INSERT INTO scripts (script_key, key, id, vendor, risk_level, content_hash)
VALUES (1, 'cdn.vendor.example/js/a.js', 'https://cdn.vendor.example/js/a.js', 'Vendor Inc.', 'high', 0);
INSERT INTO incidents (incident_key, id, app_id, host_domain, category, incident, last_seen, under_review,
                       risk_level, script_key, raw_json, content_hash, substance_hash, first_synced_at,
                       last_synced_at, content_changed_at)
VALUES (1, 'aaaaaaaaaaaaaaaaaaaaaaa1', 'PXa', 'a.example', 'pii', 'Title one', '2023-01-22T08:00:00.000Z', 0,
        'high', 1, '{}', 1, 1, 'x', 'x', 'x'),
       (2, 'aaaaaaaaaaaaaaaaaaaaaaa2', 'PXb', 'b.example', 'pci', 'Title two', '2023-01-23T08:00:00.000Z', NULL,
        'critical', NULL, '{}', 2, 2, 'x', 'x', 'x'),
       (3, 'aaaaaaaaaaaaaaaaaaaaaaa3', 'PXa', 'a.example', 'pii', 'Title three', '2023-01-24T08:00:00.000Z', 1,
        'high', 1, '{}', 3, 3, 'x', 'x', 'x');
INSERT INTO vulnerabilities (incident_key, ordinal, package, version)
VALUES (1, 0, 'lodash', '4.17.20'), (1, 1, 'lodash', '4.17.20'), (1, 2, NULL, NULL),
       (2, 0, 'lodash', '4.17.20'), (2, 1, 'jquery', '3.4.1'),
       (3, 0, 'jquery', '3.4.1');
INSERT INTO vulnerability_ids (incident_key, vulnerability_ordinal, vulnerability_id)
VALUES (1, 0, 'CVE-A'), (1, 0, 'CVE-B'), (1, 1, 'CVE-A'), (1, 2, 'CVE-N'),
       (2, 0, 'CVE-A'), (2, 1, 'CVE-J'),
       (3, 0, 'CVE-J');
INSERT INTO incident_changes (incident_key, observed_at, field, old_value, new_value)
VALUES (1, '2023-01-22T09:00:00.000Z', 'risk_level', 'medium', 'high');
INSERT INTO sync_runs (app_id, tld, from_ms, to_ms, pages, incidents_seen, incidents_new, incidents_changed,
                       started_at, finished_at, status)
VALUES ('PXa', 'a.example', 1674400000000, 1674403199999, 1, 1, 1, 0, 'x', 'x', 'ok'),
       ('PXa', 'a.example', 1674403199999, 1674403200123, 1, 1, 0, 0, 'x', 'x', 'failed');
)sql");
}

const std::string vulnerable_packages_sorted =
    "SELECT * FROM vulnerable_packages ORDER BY package, version, vulnerability_id";

// The README's top-packages query, read from README.md so the test follows it.
std::string readme_top_packages_query() {
    std::ifstream in(std::string(SOURCE_DIR) + "/README.md");
    std::string line;
    while (std::getline(in, line))
        if (line.find("FROM vulnerable_packages ORDER BY incidents DESC") != std::string::npos) return line;
    return {};
}

class SchemaViews : public isync::test::sqlite_store_test {
protected:
    void commit(const std::vector<isync::model::incident>& page, std::int64_t now,
                const slice_report* finish = nullptr) {
        auto r = store_->commit_page(page, now, finish);
        ASSERT_TRUE(r.has_value()) << r.error().message;
    }
};

}  // namespace

TEST_F(SchemaViews, AnUpgradeFromVersion3FillsTheNewColumns) {
    make_version_3(path_);
    fill_version_3(path_);
    table packages_before;
    {
        SQLite::Database v3(path_, SQLite::OPEN_READONLY);
        packages_before = rows(v3, vulnerable_packages_sorted);
    }
    open_store();
    ASSERT_EQ(db_->execAndGet("PRAGMA user_version").getInt(), latest_schema_version());

    // sync_runs: from_at/to_at are from_ms/to_ms in the daemon's own format, to the millisecond.
    EXPECT_EQ(rows(*db_, "SELECT from_ms, to_ms, from_at, to_at FROM sync_runs ORDER BY run_id"),
              (table{{"1674400000000", "1674403199999", "2023-01-22T15:06:40.000Z", "2023-01-22T15:59:59.999Z"},
                     {"1674403199999", "1674403200123", "2023-01-22T15:59:59.999Z", "2023-01-22T16:00:00.123Z"}}));
    for (const auto& r : rows(*db_, "SELECT from_ms, to_ms, from_at, to_at FROM sync_runs")) {
        EXPECT_EQ(r[2], format_iso8601_ms(std::stoll(r[0])));
        EXPECT_EQ(r[3], format_iso8601_ms(std::stoll(r[1])));
    }

    // vulnerability_ids: every row got its vulnerability's package and version and its incident's last_seen.
    EXPECT_EQ(db_->execAndGet("SELECT COUNT(*) FROM vulnerability_ids").getInt(), 7);
    EXPECT_EQ(db_->execAndGet("SELECT COUNT(*) FROM vulnerability_ids vi "
                              "JOIN vulnerabilities v ON v.incident_key = vi.incident_key "
                              "AND v.ordinal = vi.vulnerability_ordinal "
                              "JOIN incidents i ON i.incident_key = vi.incident_key "
                              "WHERE vi.package IS v.package AND vi.version IS v.version "
                              "AND vi.incident_last_seen = i.last_seen")
                  .getInt(),
              7);

    // vulnerable_packages: the same rows as version 3 gave, and the right ones.
    const table packages_after = rows(*db_, vulnerable_packages_sorted);
    EXPECT_EQ(packages_after, packages_before);
    EXPECT_EQ(packages_after, (table{{"NULL", "NULL", "CVE-N", "1", "2023-01-22T08:00:00.000Z"},
                                     {"jquery", "3.4.1", "CVE-J", "2", "2023-01-24T08:00:00.000Z"},
                                     {"lodash", "4.17.20", "CVE-A", "2", "2023-01-23T08:00:00.000Z"},
                                     {"lodash", "4.17.20", "CVE-B", "1", "2023-01-22T08:00:00.000Z"}}));

    // open_high_risk_incidents: incident 3 is under review; the script's id (its URL) comes last.
    EXPECT_EQ(
        rows(*db_, "SELECT id, script, script_id FROM open_high_risk_incidents"),
        (table{{"aaaaaaaaaaaaaaaaaaaaaaa2", "NULL", "NULL"},
               {"aaaaaaaaaaaaaaaaaaaaaaa1", "cdn.vendor.example/js/a.js", "https://cdn.vendor.example/js/a.js"}}));

    // incident_history: the incident's app, host and title beside each change.
    EXPECT_EQ(rows(*db_, "SELECT * FROM incident_history"),
              (table{{"aaaaaaaaaaaaaaaaaaaaaaa1", "2023-01-22T09:00:00.000Z", "risk_level", "medium", "high", "PXa",
                      "a.example", "Title one"}}));
}

TEST_F(SchemaViews, ExistingColumnsKeepTheirNamesAndOrderAndNewOnesComeLast) {
    open_store();
    EXPECT_EQ(columns_of(*db_, "open_high_risk_incidents"),
              (std::vector<std::string>{"id", "app_id", "host_domain", "category", "incident", "risk_level",
                                        "last_seen", "script", "vendor", "script_risk_level", "script_id"}));
    EXPECT_EQ(columns_of(*db_, "incident_history"),
              (std::vector<std::string>{"incident_id", "observed_at", "field", "old_value", "new_value", "app_id",
                                        "host_domain", "incident"}));
    EXPECT_EQ(columns_of(*db_, "vulnerable_packages"),
              (std::vector<std::string>{"package", "version", "vulnerability_id", "incidents", "last_seen"}));
    const auto runs = columns_of(*db_, "sync_runs");
    ASSERT_GE(runs.size(), 3u);
    EXPECT_EQ(runs[runs.size() - 3], "from_at");  // migration 004
    EXPECT_EQ(runs[runs.size() - 2], "to_at");
    EXPECT_EQ(runs.back(), "kind");  // migration 006
    EXPECT_EQ(runs[3], "from_ms");   // the columns before stay where they were
    EXPECT_EQ(runs[4], "to_ms");
}

TEST_F(SchemaViews, ViewsShowTheNewColumnsForWhatTheStoreWrites) {
    open_store();
    auto inc = documented_example_incident();
    commit({inc}, t1);

    EXPECT_EQ(rows(*db_, "SELECT id, script, script_id FROM open_high_risk_incidents"),
              (table{{inc.id, "cdn.vendor.example/js/tracker.js", "5f1e2d3c4b5a69788796a5b4"}}));
    EXPECT_EQ(rows(*db_, vulnerable_packages_sorted),
              (table{{"jquery", "3.4.1", "CVE-2020-11022", "1", "2023-01-22T08:30:15.084Z"},
                     {"lodash", "4.17.20", "CVE-2020-28500", "1", "2023-01-22T08:30:15.084Z"},
                     {"lodash", "4.17.20", "CVE-2021-23337", "1", "2023-01-22T08:30:15.084Z"}}));

    // A later version: critical, and seen again later. History names the
    // incident; vulnerable_packages follows its new last_seen (the copies in
    // vulnerability_ids are rewritten with the incident).
    inc.risk_level = "critical";
    inc.raw_json = replace_once(inc.raw_json, R"("risk_level": "high")", R"("risk_level": "critical")");
    inc.last_seen = "2023-01-25T00:00:00.000Z";
    inc.raw_json = replace_once(inc.raw_json,
                                R"("last_seen": "2023-01-22T08:30:15.084Z",)"
                                "\n    \"host_domain\"",
                                R"("last_seen": "2023-01-25T00:00:00.000Z",)"
                                "\n    \"host_domain\"");
    commit({inc}, t1 + 60'000);
    EXPECT_EQ(
        rows(*db_,
             "SELECT incident_id, field, old_value, new_value, app_id, host_domain, incident "
             "FROM incident_history"),
        (table{{inc.id, "risk_level", "high", "critical", "PXabc123", "example.com", "New script reads PII fields"}}));
    EXPECT_EQ(rows(*db_, "SELECT DISTINCT last_seen FROM vulnerable_packages"), (table{{"2023-01-25T00:00:00.000Z"}}));
    EXPECT_EQ(db_->execAndGet("SELECT COUNT(*) FROM vulnerability_ids vi JOIN vulnerabilities v "
                              "ON v.incident_key = vi.incident_key AND v.ordinal = vi.vulnerability_ordinal "
                              "WHERE vi.package IS v.package AND vi.version IS v.version")
                  .getInt(),
              3);
}

TEST_F(SchemaViews, NewSyncRunsCarryIsoFromAndTo) {
    open_store();
    slice_report finish;
    finish.pair = {"PXabc123", "example.com"};
    finish.from_ms = t1 - 3'600'000 + 7;  // odd milliseconds
    finish.to_ms = t1 - 60'000 + 999;
    finish.started_ms = t1 - 5000;
    commit({documented_example_incident()}, t1, &finish);

    slice_report failed = finish;
    failed.from_ms = finish.to_ms;
    failed.to_ms = t1 + 42;
    ASSERT_TRUE(store_->record_failure(failed, "boom", t1 + 1000, false).has_value());

    EXPECT_EQ(rows(*db_, "SELECT status, from_at, to_at FROM sync_runs ORDER BY run_id"),
              (table{{"ok", "2023-01-22T14:06:40.007Z", "2023-01-22T15:05:40.999Z"},
                     {"failed", "2023-01-22T15:05:40.999Z", "2023-01-22T15:06:40.042Z"}}));
    for (const auto& r : rows(*db_, "SELECT from_ms, to_ms, from_at, to_at FROM sync_runs")) {
        EXPECT_EQ(r[2], format_iso8601_ms(std::stoll(r[0])));
        EXPECT_EQ(r[3], format_iso8601_ms(std::stoll(r[1])));
    }
}

TEST_F(SchemaViews, TheReadmeTopPackagesQueryReadsTwentyIndexEntries) {
    open_store();
    // 300 incidents over 350 (package, version, CVE) groups, 50 of them shared
    // by 6 incidents each: enough rows that a GROUP BY or a sort would show.
    std::vector<isync::model::incident> page;
    for (int i = 0; i < 300; ++i) {
        char id[25];
        std::snprintf(id, sizeof id, "%024x", i + 1);
        auto inc = documented_example_incident(id);
        inc.vulnerabilities = {{"pkg" + std::to_string(i % 10),
                                "1.0",
                                {"CVE-own-" + std::to_string(i), "CVE-shared-" + std::to_string(i % 50)}}};
        page.push_back(std::move(inc));
    }
    commit(page, t1);
    const std::string query = readme_top_packages_query();
    ASSERT_FALSE(query.empty()) << "README.md has no query on vulnerable_packages ORDER BY incidents DESC";
    std::string plan;
    {
        SQLite::Statement st(*db_, "EXPLAIN QUERY PLAN " + query);
        while (st.executeStep()) plan += st.getColumn(3).getString() + "\n";
    }
    SCOPED_TRACE(query + "\n" + plan);
    // The summary read in the order of its index on `incidents`: no GROUP BY,
    // no sort, no other table. Every table access is named, whatever alias a
    // view gives its tables.
    const std::string by_incidents =
        "SCAN vulnerable_package_counts USING INDEX vulnerable_package_counts_by_incidents";
    EXPECT_TRUE(contains(plan, by_incidents));
    EXPECT_FALSE(contains(plan, "TEMP B-TREE"));
    std::istringstream lines(plan);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("SCAN ", 0) != 0 && line.rfind("SEARCH ", 0) != 0) continue;
        EXPECT_EQ(line, by_incidents);
    }

    // What it does, not only what the plan says: 20 steps through the index
    // (of 350 entries), nothing sorted, and the top 20 of the GROUP BY.
    sqlite3_stmt* raw = nullptr;  // SQLiteCpp does not hand out its statement's counters
    ASSERT_EQ(sqlite3_prepare_v2(db_->getHandle(), query.c_str(), -1, &raw, nullptr), SQLITE_OK);
    const std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st(raw, &sqlite3_finalize);
    table top;
    while (sqlite3_step(st.get()) == SQLITE_ROW)
        top.push_back({reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 2)),
                       std::to_string(sqlite3_column_int64(st.get(), 3))});
    EXPECT_LE(sqlite3_stmt_status(st.get(), SQLITE_STMTSTATUS_FULLSCAN_STEP, 0), 20);
    EXPECT_EQ(sqlite3_stmt_status(st.get(), SQLITE_STMTSTATUS_SORT, 0), 0);
    ASSERT_EQ(top.size(), 20u);
    const table counted = rows(*db_,
                               "SELECT vulnerability_id, COUNT(DISTINCT incident_key) FROM vulnerability_ids "
                               "GROUP BY package, version, vulnerability_id ORDER BY 2 DESC LIMIT 20");
    for (std::size_t i = 0; i < top.size(); ++i) EXPECT_EQ(top[i][1], counted[i][1]) << i;  // ties in any order
    EXPECT_EQ(top.front()[1], "6");
    EXPECT_TRUE(contains(top.front()[0], "CVE-shared-"));
}

TEST_F(SchemaViews, VulnerablePackagesIsRightWhileAFirstBackfillDefersItsIndex) {
    open_store();
    store_->defer_indexes_while_empty();
    ASSERT_TRUE(store_->indexes_deferred());
    ASSERT_EQ(
        db_->execAndGet("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'vulnerability_ids_by_package'").getInt(), 0);
    commit({documented_example_incident()}, t1);
    const table expected{{"jquery", "3.4.1", "CVE-2020-11022", "1", "2023-01-22T08:30:15.084Z"},
                         {"lodash", "4.17.20", "CVE-2020-28500", "1", "2023-01-22T08:30:15.084Z"},
                         {"lodash", "4.17.20", "CVE-2021-23337", "1", "2023-01-22T08:30:15.084Z"}};
    EXPECT_EQ(rows(*db_, vulnerable_packages_sorted), expected);
    store_->build_deferred_indexes();
    EXPECT_EQ(rows(*db_, vulnerable_packages_sorted), expected);
    EXPECT_EQ(
        db_->execAndGet("SELECT COUNT(*) FROM vulnerability_ids INDEXED BY vulnerability_ids_by_package").getInt(), 3);
}
