// The store contract on both backends: the same pages written through
// store::sync_store into SQLite (the reference, whose own suite is
// tests/unit/store/) and into PostgreSQL leave the same rows in every table,
// field by field, with the same counts; and each keeps the contract's
// promises (atomic watermark, an abort at any step leaves nothing, a re-read
// writes nothing) on its own.

#include "app/export_jsonl.hpp"
#include "fake_api/dataset.hpp"
#include "pgstore/pg_schema.hpp"
#include "pgstore/pg_store.hpp"
#include "postgresql/pg_test_server.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "store/migrations.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"
#include "util/timestamp.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

using isync::model::incident;
using isync::model::unknown_field;
using isync::store::slice_report;
using isync::store::sync_store;
using isync::store::upsert_counts;

namespace {

using row = std::vector<std::optional<std::string>>;
using table = std::vector<row>;

// Every table, read by natural keys (surrogate keys are each backend's own),
// with TS(x) for a timestamp and FLT(x) for a float, sorted in C++.
const std::vector<std::pair<std::string, std::string>> dump_queries{
    {"incidents",
     "SELECT i.id, i.app_id, i.host_domain, i.category, i.incident, i.details, i.initiator, TS(i.first_seen), "
     "TS(i.last_seen), TS(i.ack_updated_at), i.under_review, i.risk_level, s.key, i.raw_json, i.content_hash, "
     "i.substance_hash, TS(i.first_synced_at), TS(i.last_synced_at), TS(i.content_changed_at), i.script_risk_level "
     "FROM incidents i LEFT JOIN scripts s ON s.script_key = i.script_key"},
    {"scripts",
     "SELECT key, id, app_id, host_domain, type, vendor, TS(first_seen), TS(last_seen), "
     "FLT(users_affected_percentage), ack, risk_level, risk_reason, content_hash FROM scripts"},
    {"script_page_types",
     "SELECT s.key, p.page_type FROM script_page_types p JOIN scripts s ON s.script_key = p.script_key"},
    {"incident_page_types",
     "SELECT i.id, p.page_type, p.listed, FLT(p.percentage) FROM incident_page_types p "
     "JOIN incidents i ON i.incident_key = p.incident_key"},
    {"actions",
     "SELECT i.id, a.ordinal, a.type, a.subtype, TS(a.last_seen) FROM actions a "
     "JOIN incidents i ON i.incident_key = a.incident_key"},
    {"action_args",
     "SELECT i.id, a.action_ordinal, a.name, a.value FROM action_args a "
     "JOIN incidents i ON i.incident_key = a.incident_key"},
    {"vulnerabilities",
     "SELECT i.id, v.ordinal, v.package, v.version FROM vulnerabilities v "
     "JOIN incidents i ON i.incident_key = v.incident_key"},
    {"vulnerability_ids",
     "SELECT i.id, v.vulnerability_ordinal, v.vulnerability_id, v.package, v.version, TS(v.incident_last_seen) "
     "FROM vulnerability_ids v JOIN incidents i ON i.incident_key = v.incident_key"},
    {"sync_state",
     "SELECT app_id, tld, watermark_ms, TS(watermark), TS(last_success_at), TS(last_error_at), last_error, "
     "auth_failing FROM sync_state"},
    {"sync_runs",
     "SELECT app_id, tld, from_ms, to_ms, pages, incidents_seen, incidents_new, incidents_changed, "
     "drift_corrections, TS(started_at), TS(finished_at), status, error, TS(from_at), TS(to_at), kind FROM sync_runs"},
    {"incident_changes",
     "SELECT i.id, TS(c.observed_at), c.field, c.old_value, c.new_value FROM incident_changes c "
     "JOIN incidents i ON i.incident_key = c.incident_key"},
    {"unknown_fields", "SELECT json_path, TS(first_seen_at), example_incident_id FROM unknown_fields"},
    {"vulnerable_packages",
     "SELECT package, version, vulnerability_id, incidents, TS(last_seen) FROM vulnerable_packages"},
};

std::string with_macros(std::string sql, bool postgresql) {
    if (postgresql) {
        sql = std::regex_replace(sql, std::regex(R"(TS\(([a-z_.]+)\))"),
                                 "to_char($1, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')");
        sql = std::regex_replace(sql, std::regex(R"(FLT\(([a-z_.]+)\))"), "round($1::numeric * 1000000)::bigint");
    } else {
        sql = std::regex_replace(sql, std::regex(R"(TS\(([a-z_.]+)\))"), "$1");
        sql = std::regex_replace(sql, std::regex(R"(FLT\(([a-z_.]+)\))"), "CAST(round($1 * 1000000) AS INTEGER)");
    }
    return sql;
}

// One backend under test: its store, and its tables read back.
class backend {
public:
    virtual ~backend() = default;
    virtual sync_store& store() = 0;
    virtual table read(const std::string& sql) = 0;
    virtual bool postgresql() const = 0;

    std::map<std::string, table> dump() {
        std::map<std::string, table> out;
        for (const auto& [name, sql] : dump_queries) {
            table t = read(with_macros(sql, postgresql()));
            std::sort(t.begin(), t.end());
            out[name] = std::move(t);
        }
        return out;
    }
    std::int64_t count(const std::string& table_name) {
        auto t = read("SELECT COUNT(*) FROM " + table_name);
        return std::stoll(*t.at(0).at(0));
    }
};

class sqlite_backend final : public backend {
public:
    sqlite_backend()
        : db_(std::move(
              isync::store::open_database({dir_.file("incidents.db"), std::chrono::seconds(5), false}).value())),
          store_(*db_, dir_.file("incidents.db")) {}
    sync_store& store() override { return store_; }
    isync::store::incident_store& sqlite_store() { return store_; }
    std::string path() const { return dir_.file("incidents.db"); }
    bool postgresql() const override { return false; }
    table read(const std::string& sql) override {
        SQLite::Statement st(*db_, sql);
        table t;
        while (st.executeStep()) {
            row r;
            for (int i = 0; i < st.getColumnCount(); ++i)
                r.push_back(st.getColumn(i).isNull() ? std::nullopt : std::optional(st.getColumn(i).getString()));
            t.push_back(std::move(r));
        }
        return t;
    }

private:
    isync::test::temp_dir dir_;
    std::unique_ptr<SQLite::Database> db_;
    isync::store::incident_store store_;
};

class postgresql_backend final : public backend {
public:
    postgresql_backend() {
        auto opened = isync::pgstore::pg_store::open({database_.url(), std::nullopt, "incident-sync-tests"});
        if (!opened) throw std::runtime_error(opened.error().message);
        store_ = std::move(*opened);
        reader_ = database_.connect();
    }
    sync_store& store() override { return *store_; }
    isync::pgstore::pg_store& pg() { return *store_; }
    isync::pgstore::pg_connection& reader() { return *reader_; }
    const pg_test::fresh_database& database() const { return database_; }
    bool postgresql() const override { return true; }
    table read(const std::string& sql) override {
        auto r = reader_->exec(sql);
        table t;
        for (int i = 0; i < r.rows(); ++i) {
            row out;
            for (int c = 0; c < r.columns(); ++c) out.push_back(r.optional_text(i, c));
            t.push_back(std::move(out));
        }
        return t;
    }

private:
    pg_test::fresh_database database_;
    std::unique_ptr<isync::pgstore::pg_store> store_;
    std::unique_ptr<isync::pgstore::pg_connection> reader_;
};

constexpr std::int64_t t0 = 1674400000000;  // after the dataset's last_seen values

fake_api::dataset make_dataset(std::size_t n = 300) {
    return fake_api::dataset({.seed = 7, .incidents = n, .pairs = fake_api::sim_pairs(3)});
}

// Pages of `page_size` of each pair's window, as the engine hands them over.
struct page_plan {
    std::vector<incident> incidents;
    std::optional<slice_report> finish;
};

std::vector<page_plan> plan_pages(const fake_api::dataset& data, std::size_t page_size, std::int64_t from_ms,
                                  std::int64_t to_ms, std::int64_t started_ms) {
    std::vector<page_plan> pages;
    for (std::size_t p = 0; p < data.pairs().size(); ++p) {
        const auto window = data.window(p, from_ms, to_ms);
        std::vector<std::uint32_t> order(window.begin(), window.end());
        std::size_t pages_of_pair = 0;
        for (std::size_t start = 0; start < order.size() || start == 0; start += page_size) {
            page_plan page;
            for (std::size_t i = start; i < std::min(order.size(), start + page_size); ++i)
                page.incidents.push_back(data.expected_incident(order[i]));
            if (start + page_size >= order.size()) {
                slice_report r;
                r.pair = data.pairs()[p];
                r.from_ms = from_ms;
                r.to_ms = to_ms;
                r.started_ms = started_ms;
                r.pages = static_cast<std::int64_t>(pages_of_pair);
                page.finish = r;
            }
            ++pages_of_pair;
            pages.push_back(std::move(page));
            if (order.empty()) break;
        }
    }
    return pages;
}

// A page's incidents as the writer's untyped path sees them.
std::vector<isync::model::raw_incident> raw_of(const std::vector<incident>& incidents) {
    std::vector<isync::model::raw_incident> raw;
    for (const auto& inc : incidents) raw.push_back({inc.id, inc.raw_json, isync::util::hash_bytes(inc.raw_json)});
    return raw;
}

// Writes the pages, one transaction each, and returns the summed counts.
// With `hashes_first`, each page's stored hashes are asked first, as the
// daemon's writer does (PostgreSQL keeps that lookup for the write).
upsert_counts write_pages(sync_store& store, std::vector<page_plan>& pages, std::int64_t now_ms,
                          std::span<const unknown_field> unknown = {}, bool hashes_first = false) {
    upsert_counts total;
    for (auto& page : pages) {
        EXPECT_TRUE(store.begin());
        if (hashes_first) {
            auto hashes = store.stored_content_hashes(raw_of(page.incidents));
            EXPECT_TRUE(hashes) << (hashes ? "" : hashes.error().message);
        }
        auto counts = store.write_page(page.incidents, now_ms, page.finish ? &*page.finish : nullptr, unknown);
        EXPECT_TRUE(counts) << (counts ? "" : counts.error().message);
        if (!counts) continue;
        auto committed = store.commit();
        EXPECT_TRUE(committed) << (committed ? "" : committed.error().message);
        total += *counts;
    }
    return total;
}

void expect_same_counts(const upsert_counts& a, const upsert_counts& b) {
    EXPECT_EQ(a.seen, b.seen);
    EXPECT_EQ(a.inserted, b.inserted);
    EXPECT_EQ(a.changed, b.changed);
    EXPECT_EQ(a.unchanged, b.unchanged);
}

// The dumps equal, table by table, with the first difference shown.
void expect_same_tables(backend& reference, backend& tested) {
    const auto want = reference.dump();
    const auto got = tested.dump();
    for (const auto& [name, rows] : want) {
        const auto& other = got.at(name);
        EXPECT_EQ(rows.size(), other.size()) << "table " << name;
        for (std::size_t i = 0; i < std::min(rows.size(), other.size()); ++i) {
            if (rows[i] == other[i]) continue;
            std::string a, b;
            for (const auto& c : rows[i]) a += (c ? *c : "NULL") + " | ";
            for (const auto& c : other[i]) b += (c ? *c : "NULL") + " | ";
            ADD_FAILURE() << "table " << name << " row " << i << " differs:\n  SQLite:     " << a
                          << "\n  PostgreSQL: " << b;
            break;
        }
    }
}

class StoreBackends : public ::testing::Test {
protected:
    sqlite_backend sqlite;
    postgresql_backend pg;
};

TEST_F(StoreBackends, ABackfillLeavesTheSameRowsInEveryTable) {
    auto data = make_dataset();
    auto pages = plan_pages(data, 40, data.options().start_ms, t0, t0 - 5000);
    const std::vector<unknown_field> unknown{{"$.new_flag", data.id(0)}, {"$.script.weight", data.id(1)}};
    const auto a = write_pages(sqlite.store(), pages, t0, unknown);
    const auto b = write_pages(pg.store(), pages, t0, unknown);
    expect_same_counts(a, b);
    EXPECT_EQ(b.inserted, 300);
    expect_same_tables(sqlite, pg);
    // Not equal by being empty: every table the dataset fills holds rows.
    for (const char* t : {"incidents", "scripts", "script_page_types", "incident_page_types", "actions", "action_args",
                          "vulnerabilities", "vulnerability_ids", "sync_state", "sync_runs", "unknown_fields"})
        EXPECT_GT(pg.count(t), 0) << t;
    EXPECT_EQ(pg.count("sync_state"), 3);
}

TEST_F(StoreBackends, LiveChangesRewriteTheSameRowsAndTheSameHistory) {
    auto data = make_dataset();
    auto first = plan_pages(data, 40, data.options().start_ms, t0, t0 - 5000);
    write_pages(sqlite.store(), first, t0);
    write_pages(pg.store(), first, t0);

    // Risk levels move on and actions are added; new incidents arrive.
    data.step_live(40, t0 + 1000);
    auto second = plan_pages(data, 40, t0 - 60'000, t0 + 2000, t0 + 1500);
    const auto a = write_pages(sqlite.store(), second, t0 + 3000);
    const auto b = write_pages(pg.store(), second, t0 + 3000);
    expect_same_counts(a, b);
    EXPECT_GT(b.changed, 0);
    EXPECT_GT(b.inserted, 0);
    expect_same_tables(sqlite, pg);
    EXPECT_GT(pg.count("incident_changes"), 0);
}

TEST_F(StoreBackends, AReReadWritesNothing) {
    auto data = make_dataset();
    auto pages = plan_pages(data, 40, data.options().start_ms, t0, t0 - 5000);
    write_pages(pg.store(), pages, t0);
    write_pages(sqlite.store(), pages, t0);
    auto before = pg.read("SELECT COUNT(*), MAX(xmin::text::bigint) FROM incidents");

    const auto b = write_pages(pg.store(), pages, t0 + 60'000);
    const auto a = write_pages(sqlite.store(), pages, t0 + 60'000);
    expect_same_counts(a, b);
    EXPECT_EQ(b.unchanged, 300);
    EXPECT_EQ(b.inserted + b.changed, 0);
    // No incident row has a newer version: none was written.
    EXPECT_EQ(pg.read("SELECT COUNT(*), MAX(xmin::text::bigint) FROM incidents"), before);
    EXPECT_EQ(pg.count("incident_changes"), 0);
    expect_same_tables(sqlite, pg);
}

TEST_F(StoreBackends, APageThatRepeatsAnIdWritesBothCopiesInOrder) {
    auto data = make_dataset(20);
    std::vector<incident> page;
    for (std::size_t i = 0; i < 5; ++i) page.push_back(data.expected_incident(i));
    incident later = data.expected_incident(2);
    later.risk_level = "critical";
    later.raw_json += " ";  // other bytes: a new version
    later.hashes.reset();
    page.push_back(later);
    page.push_back(data.expected_incident(0));  // byte-identical repeat
    std::vector<page_plan> pages{{page, std::nullopt}};
    const auto a = write_pages(sqlite.store(), pages, t0);
    // The daemon's way: the page's lookup is kept, and the second batch (the
    // repeats) must still see the first batch's rows.
    const auto b = write_pages(pg.store(), pages, t0, {}, /*hashes_first=*/true);
    expect_same_counts(a, b);
    EXPECT_EQ(b.seen, 7);
    EXPECT_EQ(b.changed, 1);
    EXPECT_EQ(b.unchanged, 1);
    expect_same_tables(sqlite, pg);
}

// Repeats inside one incident (a page type, a CVE id, a script's page type)
// keep the first, as SQLite's INSERT OR IGNORE does; no statement fails.
TEST_F(StoreBackends, RepeatsInsideAnIncidentKeepTheFirst) {
    auto data = make_dataset(40);
    std::vector<incident> page;
    for (std::size_t i = 0; i < 40; ++i) {
        incident inc = data.expected_incident(i);
        if (!inc.page_types.empty()) {
            auto again = inc.page_types.front();
            again.percentage = 99.5;  // a later copy with other values: ignored
            inc.page_types.push_back(again);
        }
        for (auto& v : inc.vulnerabilities)
            if (!v.ids.empty()) v.ids.push_back(v.ids.front());
        if (inc.script && !inc.script->page_types.empty())
            inc.script->page_types.push_back(inc.script->page_types.front());
        inc.hashes.reset();
        page.push_back(std::move(inc));
    }
    std::vector<page_plan> pages{{page, std::nullopt}};
    const auto a = write_pages(sqlite.store(), pages, t0);
    const auto b = write_pages(pg.store(), pages, t0);
    expect_same_counts(a, b);
    EXPECT_EQ(b.inserted, 40);
    expect_same_tables(sqlite, pg);
    EXPECT_GT(pg.count("vulnerability_ids"), 0);
}

// Child rows go in as array literals (unnest): tabs, line breaks, carriage
// returns, backslashes, quotes-like "\N" in their text arrive as they were.
TEST_F(StoreBackends, TextWithTabsLineBreaksBackslashesQuotesAndBracesArrivesAsItWas) {
    auto data = make_dataset(20);
    std::vector<incident> page;
    // Quotes, braces, commas and NULL matter to array literals; the text
    // columns go as binary arrays, which must carry them unchanged too.
    const std::string awkward = "a\tb\nc\rd\\e \\N f\\\\g \"q\" {x,y} NULL \u00e9\u2713";
    for (std::size_t i = 0; i < 20; ++i) {
        incident inc = data.expected_incident(i);
        inc.title = awkward;
        inc.details = awkward;
        inc.category = std::string();  // empty, not NULL
        for (auto& a : inc.actions) {
            a.subtype = awkward;
            a.args.emplace_back("note", awkward);
        }
        for (auto& v : inc.vulnerabilities) v.package = awkward;
        if (!inc.page_types.empty()) inc.page_types.front().name = awkward;
        inc.hashes.reset();
        page.push_back(std::move(inc));
    }
    std::vector<page_plan> pages{{page, std::nullopt}};
    write_pages(sqlite.store(), pages, t0);
    write_pages(pg.store(), pages, t0);
    expect_same_tables(sqlite, pg);
    auto conn = pg.database().connect();
    auto r = conn->exec("SELECT COUNT(*) FROM action_args WHERE value = $1", {awkward});
    EXPECT_GT(r.int64(0, 0), 0);
    r = conn->exec("SELECT COUNT(*) FROM incidents WHERE incident = $1 AND details = $1 AND category = ''", {awkward});
    EXPECT_EQ(r.int64(0, 0), 20);
}

// A statement that fails in the middle of the pipelined child rows (made to
// fail by a trigger): the write fails whole, nothing of the transaction
// stays, and the connection goes on working for the next one.
TEST_F(StoreBackends, AFailureInsideThePipelineRollsBackAndTheConnectionGoesOn) {
    auto data = make_dataset(20);
    auto conn = pg.database().connect();
    conn->exec(
        "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.subtype = 'boom' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$");
    conn->exec("CREATE TRIGGER refuse_boom BEFORE INSERT ON actions FOR EACH ROW EXECUTE FUNCTION refuse_boom()");
    std::vector<incident> page;
    for (std::size_t i = 0; i < 20; ++i) page.push_back(data.expected_incident(i));
    const auto before = pg.dump();
    std::vector<incident> bad = page;
    for (auto& inc : bad)
        for (auto& a : inc.actions) a.subtype = "boom";
    ASSERT_TRUE(pg.store().begin());
    // The child rows are deferred to the COMMIT's round trip: the failure is
    // the commit's (or the page's, were anything read after them).
    auto written = pg.store().write_page(bad, t0);
    std::string message = written ? "" : written.error().message;
    if (written) {
        auto committed = pg.store().commit();
        ASSERT_FALSE(committed);
        message = committed.error().message;
    }
    EXPECT_TRUE(isync::test::contains(message, "refused by the test")) << message;
    EXPECT_TRUE(isync::test::contains(message, "INSERT INTO actions")) << "names the statement: " << message;
    EXPECT_FALSE(pg.store().in_transaction());
    EXPECT_EQ(pg.dump(), before);
    std::vector<page_plan> good{{page, std::nullopt}};
    const auto counts = write_pages(pg.store(), good, t0);
    EXPECT_EQ(counts.inserted, 20);
}

// Round trips are what a write costs on a database across a network: the
// lookup of the page's stored rows (with its hashes, for the writer) waits
// for the server, every write goes with the COMMIT. A fresh page (scripts, child rows, the watermark and the
// sync_runs row) costs two, a changed one three (its old child rows are read
// for the history), a re-read two; the lease fence rides along.
TEST_F(StoreBackends, APageCostsTwoRoundTripsAChangedOneThree) {
    auto data = make_dataset(300);
    const auto& pair = data.pairs()[0];
    const auto claimed = pg.store().claim_pair(pair, 1);
    ASSERT_TRUE(claimed && *claimed);
    auto& conn = pg.pg().connection();
    // One transaction as the writer makes it; its round trips.
    // As the daemon's writer does: the page's stored hashes first (to type
    // only what changed), then the write.
    const auto transaction = [&](page_plan& page, std::int64_t now_ms) {
        const auto before = conn.round_trips();
        EXPECT_TRUE(pg.store().begin());
        EXPECT_TRUE(pg.store().fence(pair));
        EXPECT_TRUE(pg.store().stored_content_hashes(raw_of(page.incidents)));
        auto counts = pg.store().write_page(page.incidents, now_ms, page.finish ? &*page.finish : nullptr);
        EXPECT_TRUE(counts) << (counts ? "" : counts.error().message);
        auto committed = pg.store().commit();
        EXPECT_TRUE(committed) << (committed ? "" : committed.error().message);
        return conn.round_trips() - before;
    };
    auto pages = plan_pages(data, 25, data.options().start_ms, t0, t0 - 5000);
    std::erase_if(pages,
                  [&](const page_plan& p) { return p.incidents.empty() || p.incidents[0].app_id != pair.app_id; });
    ASSERT_GE(pages.size(), 3u);
    ASSERT_TRUE(pages.back().finish);
    std::size_t with_children = 0;
    for (auto& page : pages) {
        for (const auto& inc : page.incidents) with_children += !inc.actions.empty() && inc.script ? 1 : 0;
        EXPECT_EQ(transaction(page, t0), 2) << "a fresh page";
    }
    EXPECT_GT(with_children, 0u) << "the pages must have scripts and child rows to write";
    for (auto& page : pages) EXPECT_EQ(transaction(page, t0 + 1000), 2) << "a re-read page";

    data.step_live(40, t0 + 2000);
    auto changed = plan_pages(data, 1000, data.options().start_ms, t0 + 3000, t0 + 2500);
    std::erase_if(changed,
                  [&](const page_plan& p) { return p.incidents.empty() || p.incidents[0].app_id != pair.app_id; });
    ASSERT_EQ(changed.size(), 1u);
    EXPECT_EQ(transaction(changed[0], t0 + 3000), 3) << "a page with changed incidents";
    EXPECT_GT(pg.count("incident_changes"), 0) << "the live step must change incidents";
    // The same ones changed again: history recorded, child rows replaced.
    data.step_live(40, t0 + 4000);
    changed = plan_pages(data, 1000, data.options().start_ms, t0 + 5000, t0 + 4500);
    std::erase_if(changed,
                  [&](const page_plan& p) { return p.incidents.empty() || p.incidents[0].app_id != pair.app_id; });
    ASSERT_EQ(changed.size(), 1u);
    EXPECT_EQ(transaction(changed[0], t0 + 5000), 3) << "a page with changed incidents, again";
}

// Seen again (only last_seen moved): the row is rewritten, content_changed_at stays.
TEST_F(StoreBackends, ASeenAgainIsNotAContentChange) {
    auto data = make_dataset(20);
    std::vector<page_plan> first{{{data.expected_incident(3)}, std::nullopt}};
    write_pages(sqlite.store(), first, t0);
    write_pages(pg.store(), first, t0);
    incident again = data.expected_incident(3);
    ASSERT_TRUE(again.last_seen);
    const std::string moved = isync::util::format_iso8601_ms(t0 - 1000);
    again.raw_json = isync::test::replace_once(again.raw_json, "\"last_seen\":\"" + *again.last_seen + "\"",
                                               "\"last_seen\":\"" + moved + "\"");
    again.last_seen = moved;
    again.hashes.reset();
    std::vector<page_plan> second{{{again}, std::nullopt}};
    const auto a = write_pages(sqlite.store(), second, t0 + 5000);
    const auto b = write_pages(pg.store(), second, t0 + 5000);
    expect_same_counts(a, b);
    EXPECT_EQ(b.changed, 1);
    expect_same_tables(sqlite, pg);
    auto r = pg.read(with_macros("SELECT TS(last_synced_at), TS(content_changed_at) FROM incidents", true));
    EXPECT_EQ(r.at(0).at(0), isync::util::format_iso8601_ms(t0 + 5000));
    EXPECT_EQ(r.at(0).at(1), isync::util::format_iso8601_ms(t0));
}

TEST_F(StoreBackends, TheWatermarkNeverMovesBackAndAResyncMovesNone) {
    auto data = make_dataset(30);
    const auto pair = data.pairs()[0];
    const auto finish = [&](std::int64_t to_ms, bool moves) {
        slice_report r;
        r.pair = pair;
        r.from_ms = to_ms - 3'600'000;
        r.to_ms = to_ms;
        r.started_ms = to_ms;
        r.moves_watermark = moves;
        return r;
    };
    for (backend* b : std::initializer_list<backend*>{&sqlite, &pg}) {
        std::vector<page_plan> pages{
            {{}, finish(t0, true)}, {{}, finish(t0 - 10'000, true)}, {{}, finish(t0 + 50'000, false)}};
        write_pages(b->store(), pages, t0 + 1);
        auto w = b->store().watermark(pair);
        ASSERT_TRUE(w);
        EXPECT_EQ(*w, std::optional<std::int64_t>(t0)) << (b->postgresql() ? "PostgreSQL" : "SQLite");
    }
    expect_same_tables(sqlite, pg);
    EXPECT_EQ(pg.count("sync_runs"), 3);
}

TEST_F(StoreBackends, AFailureIsRecordedTheSameWayAndMovesNoWatermark) {
    auto data = make_dataset(30);
    slice_report r;
    r.pair = data.pairs()[1];
    r.from_ms = t0 - 1000;
    r.to_ms = t0;
    r.started_ms = t0 - 500;
    r.pages = 2;
    r.counts.seen = 80;
    r.counts.inserted = 80;
    for (backend* b : std::initializer_list<backend*>{&sqlite, &pg}) {
        ASSERT_TRUE(b->store().record_failure(r, "HTTP 401: the token was refused", t0, true));
        auto states = b->store().sync_states();
        ASSERT_TRUE(states);
        ASSERT_EQ(states->size(), 1u);
        EXPECT_TRUE(states->front().auth_failing);
        EXPECT_EQ(states->front().last_error_ms, std::optional<std::int64_t>(t0));
        EXPECT_EQ(states->front().watermark_ms, std::nullopt);
    }
    expect_same_tables(sqlite, pg);
}

// An abort at any step of a page's transaction (begin, each incident,
// commit) leaves the database as it was: no incident, no child row, no
// watermark. Then the same page commits whole.
TEST_F(StoreBackends, AnAbortAtEveryStepLeavesNothingAndTheRetryCommitsWhole) {
    auto data = make_dataset(60);
    auto warmup = plan_pages(data, 100, data.options().start_ms, t0 - 3'600'000 * 12, t0 - 10'000);
    write_pages(pg.store(), warmup, t0 - 1000);
    data.step_live(5, t0 + 1);
    auto pages = plan_pages(data, 100, data.options().start_ms, t0 + 10, t0);
    ASSERT_EQ(pages.size(), 3u);
    auto& page = pages[0];
    ASSERT_TRUE(page.finish);
    const auto before = pg.dump();
    const std::size_t steps = 1 + page.incidents.size() + 1;  // begin, incidents, commit
    for (std::size_t fail_at = 1; fail_at <= steps; ++fail_at) {
        std::size_t seen = 0;
        pg.pg().set_step_hook([&](std::string_view step) {
            if (++seen == fail_at) throw std::runtime_error("injected failure at " + std::string(step));
        });
        bool failed = !pg.store().begin();
        if (!failed) {
            auto counts = pg.store().write_page(page.incidents, t0 + 20, &*page.finish);
            failed = !counts || !pg.store().commit();
        }
        EXPECT_TRUE(failed) << "step " << fail_at;
        EXPECT_FALSE(pg.store().in_transaction());
        EXPECT_EQ(pg.dump(), before) << "an abort at step " << fail_at << " changed the database";
    }
    pg.pg().set_step_hook(nullptr);
    std::vector<page_plan> retry{page};
    write_pages(pg.store(), retry, t0 + 20);
    EXPECT_NE(pg.dump(), before);
    auto w = pg.store().watermark(page.finish->pair);
    ASSERT_TRUE(w);
    EXPECT_EQ(*w, std::optional<std::int64_t>(t0 + 10));
}

TEST(PostgresqlSchema, IsTrackedAppliedOnceAndANewerOneIsRefused) {
    pg_test::fresh_database db;
    for (int i = 0; i < 2; ++i) {
        auto s = isync::pgstore::pg_store::open({db.url(), std::nullopt, "t"});
        ASSERT_TRUE(s) << s.error().message;
    }
    auto conn = db.connect();
    auto r = conn->exec("SELECT COUNT(*), MAX(version) FROM schema_migrations");
    EXPECT_EQ(r.int64(0, 0), static_cast<std::int64_t>(isync::store::embedded_postgresql_migrations().size()));
    EXPECT_EQ(r.int64(0, 1), isync::pgstore::latest_postgresql_schema_version());

    conn->exec("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')");
    auto refused = isync::pgstore::pg_store::open({db.url(), std::nullopt, "t"});
    ASSERT_FALSE(refused);
    EXPECT_TRUE(isync::test::contains(refused.error().message, "version 999, made by a newer incident-sync"));
    auto status = isync::pgstore::pg_store::open_existing({db.url(), std::nullopt, "t"});
    ASSERT_FALSE(status);
    EXPECT_TRUE(isync::test::contains(status.error().message, "newer"));
}

TEST(PostgresqlSchema, StatusRefusesADatabaseWithoutASchemaAndChangesNothing) {
    pg_test::fresh_database db;
    auto s = isync::pgstore::pg_store::open_existing({db.url(), std::nullopt, "t"});
    ASSERT_FALSE(s);
    EXPECT_TRUE(isync::test::contains(s.error().message, "no incident-sync schema yet"));
    auto conn = db.connect();
    EXPECT_EQ(conn->exec("SELECT to_regclass('schema_migrations') IS NULL").text(0, 0), "t");
}

}  // namespace

namespace {

// `incident-syncd export`'s lines from a backend's database.
std::vector<std::string> exported(isync::app::export_options options) {
    std::FILE* out = std::tmpfile();
    auto done = isync::app::export_jsonl(options, out);
    EXPECT_TRUE(done) << (done ? "" : done.error().message);
    std::rewind(out);
    std::vector<std::string> lines;
    char* line = nullptr;
    std::size_t cap = 0;
    while (::getline(&line, &cap, out) > 0) lines.emplace_back(line);
    std::free(line);
    std::fclose(out);
    std::sort(lines.begin(), lines.end());
    return lines;
}

// The export reads PostgreSQL as it reads SQLite: the same lines, with
// --since and --changes too.
TEST_F(StoreBackends, ExportGivesTheSameLinesFromBothBackends) {
    auto data = make_dataset();
    auto first = plan_pages(data, 40, data.options().start_ms, t0, t0 - 5000);
    write_pages(sqlite.store(), first, t0);
    write_pages(pg.store(), first, t0);
    data.step_live(30, t0 + 1000);
    auto second = plan_pages(data, 40, t0 - 60'000, t0 + 2000, t0 + 1500);
    write_pages(sqlite.store(), second, t0 + 3000);
    write_pages(pg.store(), second, t0 + 3000);

    for (const bool changes : {false, true}) {
        for (const std::optional<std::int64_t> since : {std::optional<std::int64_t>(), std::optional(t0 + 3000)}) {
            isync::app::export_options from_sqlite{
                .database_path = sqlite.path(), .since_ms = since, .changes = changes};
            isync::app::export_options from_pg{
                .postgresql = isync::pgstore::connect_options{pg.database().url(), std::nullopt, "t"},
                .since_ms = since,
                .changes = changes};
            const auto a = exported(from_sqlite);
            const auto b = exported(from_pg);
            EXPECT_FALSE(a.empty()) << changes;
            EXPECT_EQ(a, b) << "changes=" << changes << " since=" << since.value_or(0);
        }
    }
}

}  // namespace
