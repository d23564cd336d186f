#include "store/incident_store.hpp"

#include "api/page_parser.hpp"
#include "store/database.hpp"
#include "util/timestamp.hpp"

#include "support/sqlite_store_test.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using isync::errc;
using isync::model::incident;
using isync::store::incident_store;
using isync::store::open_database;
using isync::store::slice_report;
using isync::store::upsert_counts;
using isync::test::contains;
using isync::test::documented_example_incident;
using isync::test::documented_example_incident_json;
using isync::test::replace_once;
using isync::test::temp_dir;
using isync::util::format_iso8601_ms;

namespace {

using row = std::vector<std::string>;
using table = std::vector<row>;

// Cells rendered with their SQLite type visible: 'text', 42, 62.5 (REAL keeps
// a decimal point), NULL. A value bound with the wrong type does not compare equal.
std::string render(const SQLite::Column& c) {
    if (c.isNull()) return "NULL";
    if (c.isInteger()) return std::to_string(c.getInt64());
    if (c.isFloat()) {
        std::string s = fmt::format("{}", c.getDouble());
        if (s.find_first_of(".en") == std::string::npos) s += ".0";
        return s;
    }
    return "'" + c.getString() + "'";
}

std::string cell(const std::optional<std::string>& v) { return v ? "'" + *v + "'" : "NULL"; }
std::string cell(const std::string& v) { return "'" + v + "'"; }
std::string cell(const std::optional<bool>& v) { return v ? (*v ? "1" : "0") : "NULL"; }
std::string cell(std::int64_t v) { return std::to_string(v); }
std::string cell(const std::optional<double>& v) {
    if (!v) return "NULL";
    std::string s = fmt::format("{}", *v);
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
}

table rows(SQLite::Database& db, const std::string& sql, const std::vector<std::string>& params = {}) {
    SQLite::Statement st(db, sql);
    for (std::size_t i = 0; i < params.size(); ++i) st.bind(static_cast<int>(i + 1), params[i]);
    table out;
    while (st.executeStep()) {
        row r;
        for (int i = 0; i < st.getColumnCount(); ++i) r.push_back(render(st.getColumn(i)));
        out.push_back(std::move(r));
    }
    return out;
}

std::int64_t scalar(SQLite::Database& db, const std::string& sql, const std::vector<std::string>& params = {}) {
    SQLite::Statement st(db, sql);
    for (std::size_t i = 0; i < params.size(); ++i) st.bind(static_cast<int>(i + 1), params[i]);
    if (!st.executeStep()) throw std::runtime_error("no row: " + sql);
    return st.getColumn(0).getInt64();
}

std::string text(SQLite::Database& db, const std::string& sql, const std::vector<std::string>& params = {}) {
    SQLite::Statement st(db, sql);
    for (std::size_t i = 0; i < params.size(); ++i) st.bind(static_cast<int>(i + 1), params[i]);
    if (!st.executeStep()) throw std::runtime_error("no row: " + sql);
    return st.getColumn(0).getString();
}

const std::vector<std::string> data_tables = {"incidents",  "scripts",     "script_page_types", "incident_page_types",
                                              "actions",    "action_args", "vulnerabilities",   "vulnerability_ids",
                                              "sync_state", "sync_runs"};

// Every row of every table, for "nothing changed" comparisons.
std::map<std::string, table> snapshot(SQLite::Database& db) {
    std::map<std::string, table> out;
    for (const auto& t : data_tables) {
        out[t] = rows(db, "SELECT * FROM " + t);
        std::sort(out[t].begin(), out[t].end());
    }
    return out;
}

// Checks every stored column of `want` (found by its text id) against the model.
void expect_stored(SQLite::Database& db, const incident& want) {
    SCOPED_TRACE("incident " + want.id);
    const table inc = rows(db,
                           "SELECT id, app_id, host_domain, category, incident, details, initiator, first_seen, "
                           "last_seen, ack_updated_at, under_review, risk_level, raw_json "
                           "FROM incidents WHERE id = ?",
                           {want.id});
    ASSERT_EQ(inc.size(), 1u);
    EXPECT_EQ(inc[0],
              (row{cell(want.id), cell(want.app_id), cell(want.host_domain), cell(want.category), cell(want.title),
                   cell(want.details), cell(want.initiator), cell(want.first_seen), cell(want.last_seen),
                   cell(want.ack_updated_at), cell(want.under_review), cell(want.risk_level), cell(want.raw_json)}));
    // Byte for byte, not just equal as text.
    EXPECT_EQ(scalar(db, "SELECT length(CAST(raw_json AS BLOB)) FROM incidents WHERE id = ?", {want.id}),
              static_cast<std::int64_t>(want.raw_json.size()));
    EXPECT_EQ(text(db, "SELECT raw_json FROM incidents WHERE id = ?", {want.id}), want.raw_json);

    const std::string key = std::to_string(scalar(db, "SELECT incident_key FROM incidents WHERE id = ?", {want.id}));

    if (want.script) {
        const auto& s = *want.script;
        const table script = rows(db,
                                  "SELECT s.key, s.id, s.app_id, s.host_domain, s.type, s.vendor, s.first_seen, "
                                  "s.last_seen, s.users_affected_percentage, s.ack, s.risk_level, s.risk_reason "
                                  "FROM incidents i JOIN scripts s ON s.script_key = i.script_key WHERE i.id = ?",
                                  {want.id});
        ASSERT_EQ(script.size(), 1u) << "the incident's script row is missing";
        EXPECT_EQ(script[0],
                  (row{cell(s.key), cell(s.id), cell(s.app_id), cell(s.host_domain), cell(s.type), cell(s.vendor),
                       cell(s.first_seen), cell(s.last_seen), cell(s.users_affected_percentage), cell(s.ack),
                       cell(s.risk_level), cell(s.risk_reason)}));
        std::vector<std::string> page_types = s.page_types;
        std::sort(page_types.begin(), page_types.end());
        page_types.erase(std::unique(page_types.begin(), page_types.end()), page_types.end());
        table want_types;
        for (const auto& p : page_types) want_types.push_back({cell(p)});
        EXPECT_EQ(rows(db,
                       "SELECT spt.page_type FROM incidents i JOIN script_page_types spt "
                       "ON spt.script_key = i.script_key WHERE i.id = ? ORDER BY spt.page_type",
                       {want.id}),
                  want_types);
    } else {
        EXPECT_EQ(rows(db, "SELECT script_key FROM incidents WHERE id = ?", {want.id}), (table{{"NULL"}}));
    }

    table want_page_types;
    for (const auto& p : want.page_types)
        want_page_types.push_back({cell(p.name), p.listed ? "1" : "0", cell(p.percentage)});
    EXPECT_EQ(rows(db,
                   "SELECT page_type, listed, percentage FROM incident_page_types WHERE incident_key = ? "
                   "ORDER BY page_type",
                   {key}),
              want_page_types);

    table want_actions, want_args;
    for (std::size_t i = 0; i < want.actions.size(); ++i) {
        const auto& a = want.actions[i];
        const auto ordinal = cell(static_cast<std::int64_t>(i));
        want_actions.push_back({ordinal, cell(a.type), cell(a.subtype), cell(a.last_seen)});
        auto args = a.args;
        std::sort(args.begin(), args.end());
        for (const auto& [name, value] : args) want_args.push_back({ordinal, cell(name), cell(value)});
    }
    EXPECT_EQ(rows(db, "SELECT ordinal, type, subtype, last_seen FROM actions WHERE incident_key = ? ORDER BY ordinal",
                   {key}),
              want_actions);
    EXPECT_EQ(rows(db,
                   "SELECT action_ordinal, name, value FROM action_args WHERE incident_key = ? "
                   "ORDER BY action_ordinal, name",
                   {key}),
              want_args);

    table want_vulns, want_ids;
    for (std::size_t i = 0; i < want.vulnerabilities.size(); ++i) {
        const auto& v = want.vulnerabilities[i];
        const auto ordinal = cell(static_cast<std::int64_t>(i));
        want_vulns.push_back({ordinal, cell(v.package), cell(v.version)});
        auto ids = v.ids;
        std::sort(ids.begin(), ids.end());
        for (const auto& id : ids) want_ids.push_back({ordinal, cell(id)});
    }
    EXPECT_EQ(rows(db, "SELECT ordinal, package, version FROM vulnerabilities WHERE incident_key = ? ORDER BY ordinal",
                   {key}),
              want_vulns);
    EXPECT_EQ(rows(db,
                   "SELECT vulnerability_ordinal, vulnerability_id FROM vulnerability_ids WHERE incident_key = ? "
                   "ORDER BY vulnerability_ordinal, vulnerability_id",
                   {key}),
              want_ids);
}

constexpr std::int64_t t1 = 1700000000000;  // 2023-11-14T22:13:20.000Z
constexpr std::int64_t t2 = t1 + 60'000;
constexpr std::int64_t t3 = t1 + 120'000;

const isync::config::pair pair_a{"PXabc123", "example.com"};
const isync::config::pair pair_b{"PXother", "other.example"};

// A second incident that shares the example's script but differs elsewhere.
incident second_incident() {
    incident inc = documented_example_incident("63cbd5e1a5b6c7d8e9f05678");
    inc.risk_level = "low";
    inc.raw_json = replace_once(inc.raw_json, R"("risk_level": "high")", R"("risk_level": "low")");
    inc.under_review = std::nullopt;
    inc.raw_json = replace_once(inc.raw_json, R"("under_review": false,)", "");
    inc.vulnerabilities.resize(1);
    inc.vulnerabilities[0].ids = {"CVE-2021-23337"};
    inc.raw_json = replace_once(inc.raw_json, R"(, "CVE-2020-28500")", "");
    inc.raw_json =
        replace_once(inc.raw_json,
                     ",\n        {\"package\": \"jquery\", \"version\": \"3.4.1\", \"ids\": [\"CVE-2020-11022\"]}", "");
    return inc;
}

// An incident with its own script and nothing optional beyond that.
incident sparse_incident(std::string id, std::string script_key) {
    incident inc;
    inc.id = std::move(id);
    inc.app_id = "PXabc123";
    inc.risk_level = "medium";
    isync::model::script s;
    s.key = std::move(script_key);
    inc.script = s;
    inc.raw_json =
        R"({"id":")" + inc.id + R"(","app_id":"PXabc123","risk_level":"medium","script":{"key":")" + *s.key + R"("}})";
    return inc;
}

// The documented example with its risk raised to critical and its first
// action (with both its args) gone, in the model and in raw_json alike.
incident critical_without_first_action(const incident& original) {
    incident changed = original;
    changed.risk_level = "critical";
    changed.raw_json = replace_once(changed.raw_json, R"("risk_level": "high")", R"("risk_level": "critical")");
    changed.actions.erase(changed.actions.begin());
    changed.raw_json = replace_once(
        changed.raw_json,
        "{\"type\": \"network\", \"subtype\": \"post\", \"last_seen\": \"2023-01-22T08:30:15.084Z\",\n"
        "         \"action_args\": {\"url\": \"https://collect.vendor.example/c\", \"method\": \"POST\"}},\n        ",
        "");
    return changed;
}

class Store : public isync::test::sqlite_store_test {
protected:
    void SetUp() override { open_store(); }

    upsert_counts commit(const std::vector<incident>& page, std::int64_t now, const slice_report* finish = nullptr) {
        auto r = store_->commit_page(page, now, finish);
        if (!r) throw std::runtime_error("commit_page failed: " + r.error().message);
        return *r;
    }

    std::int64_t count(const std::string& table_name) { return scalar(*db_, "SELECT COUNT(*) FROM " + table_name); }
    std::int64_t total_changes() { return sqlite3_total_changes64(db_->getHandle()); }
};

slice_report report(const isync::config::pair& p, std::int64_t from, std::int64_t to) {
    slice_report r;
    r.pair = p;
    r.from_ms = from;
    r.to_ms = to;
    r.started_ms = t1 - 5000;
    return r;
}

}  // namespace

TEST_F(Store, InsertsEveryFieldIntoEveryTable) {
    const incident a = documented_example_incident();
    const incident b = second_incident();
    const auto counts = commit({a, b}, t1);
    EXPECT_EQ(counts.seen, 2);
    EXPECT_EQ(counts.inserted, 2);
    EXPECT_EQ(counts.changed, 0);
    EXPECT_EQ(counts.unchanged, 0);

    expect_stored(*db_, a);
    expect_stored(*db_, b);

    // Row counts: the shared script once, every child row once.
    EXPECT_EQ(count("incidents"), 2);
    EXPECT_EQ(count("scripts"), 1);
    EXPECT_EQ(count("script_page_types"), 2);
    EXPECT_EQ(count("incident_page_types"), 6);
    EXPECT_EQ(count("actions"), 4);
    EXPECT_EQ(count("action_args"), 6);
    EXPECT_EQ(count("vulnerabilities"), 3);
    EXPECT_EQ(count("vulnerability_ids"), 4);
    EXPECT_EQ(count("sync_state"), 0);  // no slice finished
    EXPECT_EQ(count("sync_runs"), 0);

    // Literal spot checks, independent of the model helpers.
    EXPECT_EQ(text(*db_, "SELECT first_seen FROM scripts"), "2023-01-20T10:00:00.000Z");
    EXPECT_EQ(rows(*db_, "SELECT typeof(users_affected_percentage), typeof(ack) FROM scripts"),
              (table{{"'real'", "'integer'"}}));
    EXPECT_EQ(rows(*db_, "SELECT typeof(under_review), under_review FROM incidents WHERE id = ?", {a.id}),
              (table{{"'integer'", "0"}}));

    // Sync bookkeeping: all three times are the injected now.
    const std::string now = format_iso8601_ms(t1);
    EXPECT_EQ(rows(*db_, "SELECT first_synced_at, last_synced_at, content_changed_at FROM incidents ORDER BY id"),
              (table{{cell(now), cell(now), cell(now)}, {cell(now), cell(now), cell(now)}}));
}

TEST_F(Store, ViewsResolveTextIds) {
    const incident a = documented_example_incident();
    const incident b = second_incident();
    commit({a, b}, t1);

    EXPECT_EQ(rows(*db_,
                   "SELECT id, script_key_text, script_id, script_vendor, script_type, script_risk_level, "
                   "script_risk_reason FROM incidents_with_script ORDER BY id"),
              (table{{cell(a.id), "'cdn.vendor.example/js/tracker.js'", "'5f1e2d3c4b5a69788796a5b4'", "'Vendor Inc.'",
                      "'third_party'", "'medium'", "'reads form fields'"},
                     {cell(b.id), "'cdn.vendor.example/js/tracker.js'", "'5f1e2d3c4b5a69788796a5b4'", "'Vendor Inc.'",
                      "'third_party'", "'medium'", "'reads form fields'"}}));

    // Only `a` is high risk; `b` is low.
    EXPECT_EQ(rows(*db_, "SELECT id, risk_level, script, vendor FROM open_high_risk_incidents"),
              (table{{cell(a.id), "'high'", "'cdn.vendor.example/js/tracker.js'", "'Vendor Inc.'"}}));

    EXPECT_EQ(
        rows(*db_, "SELECT incident_id, ordinal, type, subtype FROM incident_actions ORDER BY incident_id, ordinal"),
        (table{{cell(a.id), "0", "'network'", "'post'"},
               {cell(a.id), "1", "'dom'", "'read_input'"},
               {cell(b.id), "0", "'network'", "'post'"},
               {cell(b.id), "1", "'dom'", "'read_input'"}}));

    EXPECT_EQ(rows(*db_,
                   "SELECT action_ordinal, name, value FROM incident_action_args WHERE incident_id = ? "
                   "ORDER BY action_ordinal, name",
                   {a.id}),
              (table{{"0", "'method'", "'POST'"},
                     {"0", "'url'", "'https://collect.vendor.example/c'"},
                     {"1", "'field'", "'email'"}}));

    EXPECT_EQ(rows(*db_,
                   "SELECT incident_id, ordinal, package, version, vulnerability_id FROM incident_vulnerabilities "
                   "ORDER BY incident_id, ordinal, vulnerability_id"),
              (table{{cell(a.id), "0", "'lodash'", "'4.17.20'", "'CVE-2020-28500'"},
                     {cell(a.id), "0", "'lodash'", "'4.17.20'", "'CVE-2021-23337'"},
                     {cell(a.id), "1", "'jquery'", "'3.4.1'", "'CVE-2020-11022'"},
                     {cell(b.id), "0", "'lodash'", "'4.17.20'", "'CVE-2021-23337'"}}));

    // CVE-2021-23337 is carried by both incidents.
    EXPECT_EQ(rows(*db_,
                   "SELECT package, version, vulnerability_id, incidents, last_seen FROM vulnerable_packages "
                   "ORDER BY vulnerability_id"),
              (table{{"'jquery'", "'3.4.1'", "'CVE-2020-11022'", "1", "'2023-01-22T08:30:15.084Z'"},
                     {"'lodash'", "'4.17.20'", "'CVE-2020-28500'", "1", "'2023-01-22T08:30:15.084Z'"},
                     {"'lodash'", "'4.17.20'", "'CVE-2021-23337'", "2", "'2023-01-22T08:30:15.084Z'"}}));
}

TEST_F(Store, SamePageTwiceChangesNothing) {
    const std::vector<incident> page = {documented_example_incident(), second_incident(),
                                        sparse_incident("000000000000000000000003", "other-script")};
    commit(page, t1);
    const auto before = snapshot(*db_);
    const auto changes_before = total_changes();

    const auto counts = commit(page, t2);
    EXPECT_EQ(counts.seen, 3);
    EXPECT_EQ(counts.unchanged, 3);
    EXPECT_EQ(counts.inserted, 0);
    EXPECT_EQ(counts.changed, 0);
    EXPECT_EQ(total_changes() - changes_before, 0);
    EXPECT_EQ(snapshot(*db_), before);  // includes last_synced_at and content_changed_at
    EXPECT_EQ(text(*db_, "SELECT DISTINCT last_synced_at FROM incidents"), format_iso8601_ms(t1));
}

TEST_F(Store, ChangedIncidentUpdatesItsRowAndReplacesItsChildren) {
    const incident original = documented_example_incident();
    const incident untouched = second_incident();
    commit({original, untouched}, t1);
    const auto key_before = scalar(*db_, "SELECT incident_key FROM incidents WHERE id = ?", {original.id});
    const auto untouched_before = snapshot(*db_);

    const incident changed = critical_without_first_action(original);

    const auto counts = commit({changed, untouched}, t2);
    EXPECT_EQ(counts.seen, 2);
    EXPECT_EQ(counts.changed, 1);
    EXPECT_EQ(counts.unchanged, 1);
    EXPECT_EQ(counts.inserted, 0);

    expect_stored(*db_, changed);
    expect_stored(*db_, untouched);
    EXPECT_EQ(scalar(*db_, "SELECT incident_key FROM incidents WHERE id = ?", {changed.id}), key_before);
    EXPECT_EQ(rows(*db_, "SELECT first_synced_at, last_synced_at, content_changed_at FROM incidents WHERE id = ?",
                   {changed.id}),
              (table{{cell(format_iso8601_ms(t1)), cell(format_iso8601_ms(t2)), cell(format_iso8601_ms(t2))}}));
    // The removed action and its args are gone, nothing of them lingers.
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM action_args WHERE name IN ('url', 'method') AND incident_key = ?",
                     {std::to_string(key_before)}),
              0);
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM actions WHERE incident_key = ?", {std::to_string(key_before)}), 1);
    EXPECT_EQ(count("incidents"), 2);
    EXPECT_EQ(count("actions"), 3);
    EXPECT_EQ(count("action_args"), 4);

    // The other incident's rows, its own and its children, are exactly as before.
    const auto after = snapshot(*db_);
    const auto untouched_key =
        std::to_string(scalar(*db_, "SELECT incident_key FROM incidents WHERE id = ?", {untouched.id}));
    for (const char* t :
         {"incidents", "incident_page_types", "actions", "action_args", "vulnerabilities", "vulnerability_ids"}) {
        table was, is;
        for (const auto& r : untouched_before.at(t))
            if (r[0] == untouched_key) was.push_back(r);
        for (const auto& r : after.at(t))
            if (r[0] == untouched_key) is.push_back(r);
        EXPECT_EQ(is, was) << t;
    }
}

TEST_F(Store, OnlyLastSeenChangedMovesLastSyncedAtButNotContentChangedAt) {
    const incident original = documented_example_incident();
    commit({original}, t1);

    incident seen_again = original;
    seen_again.last_seen = "2023-01-23T00:00:00.000Z";
    seen_again.raw_json = replace_once(seen_again.raw_json,
                                       R"("last_seen": "2023-01-22T08:30:15.084Z",)"
                                       "\n    \"host_domain\"",
                                       R"("last_seen": "2023-01-23T00:00:00Z",)"
                                       "\n    \"host_domain\"");
    seen_again.script->last_seen = "2023-01-23T00:00:00.000Z";
    seen_again.raw_json = replace_once(seen_again.raw_json, R"("last_seen": "2023-01-22T03:00:00-05:30")",
                                       R"("last_seen": "2023-01-23T00:00:00Z")");
    seen_again.actions[1].last_seen = "2023-01-23T00:00:00.000Z";
    seen_again.raw_json = replace_once(seen_again.raw_json, R"("last_seen": "2023-01-22T10:00:00+02:00")",
                                       R"("last_seen": "2023-01-23T00:00:00Z")");

    const auto counts = commit({seen_again}, t2);
    EXPECT_EQ(counts.changed, 1);
    EXPECT_EQ(counts.unchanged, 0);
    expect_stored(*db_, seen_again);  // the new last_seen values are stored
    EXPECT_EQ(rows(*db_, "SELECT first_synced_at, last_synced_at, content_changed_at FROM incidents"),
              (table{{cell(format_iso8601_ms(t1)), cell(format_iso8601_ms(t2)), cell(format_iso8601_ms(t1))}}));

    // A real change afterwards does move it.
    incident reviewed = seen_again;
    reviewed.under_review = true;
    reviewed.raw_json = replace_once(reviewed.raw_json, R"("under_review": false)", R"("under_review": true)");
    commit({reviewed}, t3);
    EXPECT_EQ(rows(*db_, "SELECT first_synced_at, last_synced_at, content_changed_at FROM incidents"),
              (table{{cell(format_iso8601_ms(t1)), cell(format_iso8601_ms(t3)), cell(format_iso8601_ms(t3))}}));
}

TEST_F(Store, FailureInTheMiddleOfAPageLeavesNothingBehind) {
    const std::vector<incident> page = {documented_example_incident(),
                                        sparse_incident("000000000000000000000002", "script-two"),
                                        sparse_incident("000000000000000000000003", "script-three")};
    int incident_steps = 0;
    store_->set_step_hook([&](std::string_view step) {
        if (step == "incident" && ++incident_steps == 2) throw std::runtime_error("injected failure at incident 2");
    });
    slice_report finish = report(pair_a, t1 - 3'600'000, t1 - 60'000);
    auto r = store_->commit_page(page, t1, &finish);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(incident_steps, 2);
    EXPECT_EQ(r.error().code, errc::database);
    EXPECT_TRUE(contains(r.error().message, path_));
    EXPECT_TRUE(contains(r.error().message, "injected failure at incident 2"));

    for (const auto& t : data_tables) EXPECT_EQ(count(t), 0) << t;
    auto wm = store_->watermark(pair_a);
    ASSERT_TRUE(wm.has_value()) << wm.error().message;
    EXPECT_EQ(*wm, std::nullopt);

    // The store still works: the same page commits in full. (The first
    // incident's script was written and rolled back; a stale cache entry for
    // it would now point at a row that does not exist.)
    store_->set_step_hook(nullptr);
    auto again = store_->commit_page(page, t2, &finish);
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(again->inserted, 3);
    for (const auto& inc : page) expect_stored(*db_, inc);
    EXPECT_EQ(count("scripts"), 3);
    EXPECT_TRUE(rows(*db_, "PRAGMA foreign_key_check").empty()) << "no dangling references";
    wm = store_->watermark(pair_a);
    ASSERT_TRUE(wm.has_value());
    EXPECT_EQ(*wm, finish.to_ms);
}

TEST_F(Store, FailureAtCommitStepRollsBackAndAStaleScriptIsNotCached) {
    incident inc = documented_example_incident();
    commit({inc}, t1);

    // A new script version is written, then the transaction fails at commit.
    incident updated = inc;
    updated.script->vendor = "Vendor Ltd.";
    updated.raw_json = replace_once(updated.raw_json, R"("vendor": "Vendor Inc.")", R"("vendor": "Vendor Ltd.")");
    store_->set_step_hook([](std::string_view step) {
        if (step == "commit") throw std::runtime_error("injected failure at commit");
    });
    auto r = store_->commit_page(std::vector<incident>{updated}, t2);
    ASSERT_FALSE(r.has_value());
    expect_stored(*db_, inc);  // the old version is intact

    // Retry without the fault: the script row must be rewritten, not skipped
    // because a cache believed the rolled-back write had happened.
    store_->set_step_hook(nullptr);
    const auto counts = commit({updated}, t3);
    EXPECT_EQ(counts.changed, 1);
    expect_stored(*db_, updated);
    EXPECT_EQ(text(*db_, "SELECT vendor FROM scripts"), "Vendor Ltd.");
}

TEST_F(Store, CommitWithSliceReportMovesTheWatermarkAndRecordsTheRun) {
    slice_report finish = report(pair_a, t1 - 3'600'000, t1 - 60'000);
    finish.pages = 2;  // two pages were committed before this one
    finish.counts = {.seen = 7, .inserted = 4, .changed = 2, .unchanged = 1};
    finish.drift_corrections = 1;

    const auto counts = commit({documented_example_incident(), second_incident()}, t1, &finish);
    EXPECT_EQ(counts.inserted, 2);

    auto wm = store_->watermark(pair_a);
    ASSERT_TRUE(wm.has_value()) << wm.error().message;
    EXPECT_EQ(*wm, finish.to_ms);
    EXPECT_EQ(rows(*db_,
                   "SELECT app_id, tld, watermark_ms, watermark, last_success_at, last_error, auth_failing "
                   "FROM sync_state"),
              (table{{"'PXabc123'", "'example.com'", cell(finish.to_ms), cell(format_iso8601_ms(finish.to_ms)),
                      cell(format_iso8601_ms(t1)), "NULL", "0"}}));
    EXPECT_EQ(rows(*db_,
                   "SELECT app_id, tld, from_ms, to_ms, pages, incidents_seen, incidents_new, incidents_changed, "
                   "drift_corrections, started_at, finished_at, status, error FROM sync_runs"),
              (table{{"'PXabc123'", "'example.com'", cell(finish.from_ms), cell(finish.to_ms), "3", "9", "6", "2", "1",
                      cell(format_iso8601_ms(finish.started_ms)), cell(format_iso8601_ms(t1)), "'ok'", "NULL"}}));

    // Other pairs are untouched.
    auto other = store_->watermark(pair_b);
    ASSERT_TRUE(other.has_value());
    EXPECT_EQ(*other, std::nullopt);
}

TEST_F(Store, CommitWithoutSliceReportLeavesTheWatermarkAlone) {
    commit({documented_example_incident()}, t1);
    auto wm = store_->watermark(pair_a);
    ASSERT_TRUE(wm.has_value());
    EXPECT_EQ(*wm, std::nullopt);
    EXPECT_EQ(count("sync_runs"), 0);
}

TEST_F(Store, WatermarkNeverMovesBackwards) {
    slice_report later = report(pair_a, t1 - 7'200'000, t1 - 60'000);
    commit({}, t1, &later);
    slice_report earlier = report(pair_a, t1 - 14'400'000, t1 - 3'600'000);
    commit({}, t2, &earlier);

    auto wm = store_->watermark(pair_a);
    ASSERT_TRUE(wm.has_value());
    EXPECT_EQ(*wm, later.to_ms);
    EXPECT_EQ(text(*db_, "SELECT watermark FROM sync_state"), format_iso8601_ms(later.to_ms));
    // The run is still recorded, and the success time moves.
    EXPECT_EQ(count("sync_runs"), 2);
    EXPECT_EQ(text(*db_, "SELECT last_success_at FROM sync_state"), format_iso8601_ms(t2));

    slice_report newest = report(pair_a, t1 - 60'000, t1);
    commit({}, t3, &newest);
    wm = store_->watermark(pair_a);
    ASSERT_TRUE(wm.has_value());
    EXPECT_EQ(*wm, newest.to_ms);
    EXPECT_EQ(text(*db_, "SELECT watermark FROM sync_state"), format_iso8601_ms(newest.to_ms));
}

TEST_F(Store, WatermarksArePerPair) {
    slice_report a = report(pair_a, 0, t1);
    slice_report b = report(pair_b, 0, t2);
    commit({}, t1, &a);
    commit({}, t2, &b);
    EXPECT_EQ(store_->watermark(pair_a).value(), t1);
    EXPECT_EQ(store_->watermark(pair_b).value(), t2);
    // Same app, other tld: a different pair.
    EXPECT_EQ(store_->watermark({pair_a.app_id, "other.example"}).value(), std::nullopt);
}

TEST_F(Store, RecordFailureWritesAFailedRunWithoutMovingTheWatermark) {
    slice_report ok = report(pair_a, t1 - 3'600'000, t1 - 60'000);
    commit({}, t1, &ok);

    slice_report failed = report(pair_a, t1 - 60'000, t2);
    failed.pages = 1;
    failed.counts = {.seen = 5, .inserted = 3, .changed = 1, .unchanged = 1};
    auto r = store_->record_failure(failed, "HTTP 503: server error", t2, false);
    ASSERT_TRUE(r.has_value()) << r.error().message;

    EXPECT_EQ(store_->watermark(pair_a).value(), ok.to_ms);
    EXPECT_EQ(rows(*db_,
                   "SELECT watermark_ms, watermark, last_success_at, last_error_at, last_error, auth_failing "
                   "FROM sync_state"),
              (table{{cell(ok.to_ms), cell(format_iso8601_ms(ok.to_ms)), cell(format_iso8601_ms(t1)),
                      cell(format_iso8601_ms(t2)), "'HTTP 503: server error'", "0"}}));
    EXPECT_EQ(rows(*db_,
                   "SELECT from_ms, to_ms, pages, incidents_seen, incidents_new, incidents_changed, started_at, "
                   "finished_at, status, error FROM sync_runs WHERE status = 'failed'"),
              (table{{cell(failed.from_ms), cell(failed.to_ms), "1", "5", "3", "1",
                      cell(format_iso8601_ms(failed.started_ms)), cell(format_iso8601_ms(t2)), "'failed'",
                      "'HTTP 503: server error'"}}));
    EXPECT_EQ(count("sync_runs"), 2);
}

TEST_F(Store, RecordFailureOnAFreshPairAndAuthFlag) {
    slice_report failed = report(pair_b, 0, t1);
    auto r = store_->record_failure(failed, "HTTP 401: the API refused the token", t1, true);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(store_->watermark(pair_b).value(), std::nullopt);
    EXPECT_EQ(rows(*db_, "SELECT app_id, tld, watermark_ms, auth_failing FROM sync_state"),
              (table{{"'PXother'", "'other.example'", "NULL", "1"}}));

    // The next success clears the auth flag and sets the watermark.
    slice_report ok = report(pair_b, 0, t1);
    commit({}, t2, &ok);
    EXPECT_EQ(rows(*db_, "SELECT watermark_ms, auth_failing FROM sync_state"), (table{{cell(t1), "0"}}));
}

TEST(StoreBusy, LockedDatabaseIsBusyAndNamesTheFile) {
    temp_dir dir;
    const std::string path = dir.file("locked.db");
    auto opened = open_database({.path = path, .busy_timeout = 50ms});
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    incident_store store(**opened, path);

    SQLite::Database other(path, SQLite::OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");

    const std::vector<incident> page = {documented_example_incident()};
    slice_report finish = report(pair_a, 0, t1);
    auto r = store.commit_page(page, t1, &finish);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, errc::database_busy);
    EXPECT_TRUE(contains(r.error().message, path));

    auto f = store.record_failure(finish, "x", t1, false);
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().code, errc::database_busy);
    EXPECT_TRUE(contains(f.error().message, path));

    // Once the other writer lets go, the same store commits normally.
    other.exec("ROLLBACK");
    auto again = store.commit_page(page, t2, &finish);
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(again->inserted, 1);
    EXPECT_EQ(store.watermark(pair_a).value(), t1);
}

TEST_F(Store, DocumentedExampleRoundTripsFromJsonToEveryColumn) {
    const std::string json = documented_example_incident_json();
    const std::string body = R"({"paging": {"previous": "", "count": 1}, "data": [)" + json + "]}";
    auto page = isync::api::parse_page(body);
    ASSERT_TRUE(page.has_value()) << page.error().message;
    commit(page->incidents, t1);

    // Compared with the hand-written expectation, not with what the parser produced.
    const incident want = documented_example_incident();
    expect_stored(*db_, want);
    EXPECT_EQ(text(*db_, "SELECT raw_json FROM incidents"), json);
    EXPECT_EQ(count("incidents"), 1);
    EXPECT_EQ(count("scripts"), 1);
    EXPECT_EQ(count("script_page_types"), 2);
    EXPECT_EQ(count("incident_page_types"), 3);
    EXPECT_EQ(count("actions"), 2);
    EXPECT_EQ(count("action_args"), 3);
    EXPECT_EQ(count("vulnerabilities"), 2);
    EXPECT_EQ(count("vulnerability_ids"), 3);
}

TEST_F(Store, ScriptKeyFallsBackToIdAndScriptlessIncidentsStoreNull) {
    incident keyless = sparse_incident("000000000000000000000010", "unused");
    keyless.script->key.reset();
    keyless.script->id = "abc";
    keyless.raw_json = R"({"id":"000000000000000000000010","script":{"id":"abc"}})";
    incident scriptless = sparse_incident("000000000000000000000011", "unused");
    scriptless.script.reset();
    scriptless.raw_json = R"({"id":"000000000000000000000011"})";
    commit({keyless, scriptless}, t1);
    EXPECT_EQ(rows(*db_, "SELECT key, id FROM scripts"), (table{{"'id:abc'", "'abc'"}}));
    expect_stored(*db_, scriptless);
    EXPECT_EQ(count("incidents"), 2);
}

TEST_F(Store, SameIncidentTwiceInOnePageIsStoredOnce) {
    // Offset paging over a changing result set can repeat an item.
    const incident a = documented_example_incident();
    const auto counts = commit({a, a}, t1);
    EXPECT_EQ(counts.seen, 2);
    EXPECT_EQ(counts.inserted, 1);
    EXPECT_EQ(counts.unchanged, 1);
    EXPECT_EQ(count("incidents"), 1);
    expect_stored(*db_, a);
}

TEST_F(Store, AnIncidentChangedLaterInTheSamePageKeepsOnlyTheLaterChildrenAndItsHistory) {
    // Child rows are inserted in batches at the end of a page; an incident
    // that appears again, changed, in the same page must be compared with
    // and replace the children of its first appearance, not add to them.
    const incident original = documented_example_incident();
    const incident changed = critical_without_first_action(original);
    const incident other = second_incident();

    const auto counts = commit({original, other, changed}, t1);
    EXPECT_EQ(counts.inserted, 2);
    EXPECT_EQ(counts.changed, 1);
    expect_stored(*db_, changed);
    expect_stored(*db_, other);
    const auto key = std::to_string(scalar(*db_, "SELECT incident_key FROM incidents WHERE id = ?", {changed.id}));
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM actions WHERE incident_key = ?", {key}),
              static_cast<std::int64_t>(changed.actions.size()));
    // The history saw the first appearance's actions and risk as the old values.
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incident_changes WHERE incident_key = ? AND field = 'actions'", {key}),
              1);
    EXPECT_EQ(rows(*db_,
                   "SELECT old_value, new_value FROM incident_changes WHERE incident_key = ? AND "
                   "field = 'risk_level'",
                   {key}),
              (table{{cell(std::string("high")), cell(std::string("critical"))}}));
}

TEST_F(Store, AnArgNameRepeatedInOneActionKeepsItsLastValue) {
    // JSON lets an object repeat a name; the last value counts (as it did when
    // args were written with INSERT OR REPLACE), once per name.
    incident a = documented_example_incident();
    ASSERT_FALSE(a.actions.empty());
    a.actions[0].args = {{"url", "https://first.example/"}, {"method", "GET"}, {"url", "https://last.example/"}};
    commit({a}, t1);
    const auto key = std::to_string(scalar(*db_, "SELECT incident_key FROM incidents WHERE id = ?", {a.id}));
    EXPECT_EQ(
        rows(*db_, "SELECT name, value FROM action_args WHERE incident_key = ? AND action_ordinal = 0 ORDER BY name",
             {key}),
        (table{{cell(std::string("method")), cell(std::string("GET"))},
               {cell(std::string("url")), cell(std::string("https://last.example/"))}}));
}
