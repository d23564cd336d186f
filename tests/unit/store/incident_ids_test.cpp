// incident_ids (schema 007): the writer's map from the API's id to
// incident_key, kept in id order per transaction, and the pending ids that
// wait for it.

#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "store/incident_writer.hpp"
#include "store/migrations.hpp"
#include "store/pending_incident_ids.hpp"
#include "store/statements.hpp"
#include "util/hash.hpp"

#include "support/sqlite_store_test.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using isync::model::incident;
using isync::store::incident_store;
using isync::store::open_database;
using isync::store::pending_incident_ids;
using isync::store::upsert_counts;
using isync::test::contains;
using isync::test::documented_example_incident;
using isync::test::replace_once;
using isync::test::temp_dir;

namespace {

constexpr std::int64_t t1 = 1674400060000;

// The documented example under another id, with `risk` as its risk level.
incident example(const std::string& id, const std::string& risk = "high") {
    incident inc = documented_example_incident(id);
    if (risk != "high") {
        inc.risk_level = risk;
        inc.raw_json = replace_once(inc.raw_json, R"("risk_level": "high")", R"("risk_level": ")" + risk + "\"");
    }
    return inc;
}

std::string id_number(int i) {
    // 24 hex digits whose order differs from the order they are made in.
    const auto h = static_cast<std::uint64_t>(isync::util::hash_bytes(std::to_string(i)));
    char out[25];
    std::snprintf(out, sizeof out, "%08x%016llx", i, static_cast<unsigned long long>(h));
    std::rotate(out, out + 8, out + 24);
    return out;
}

std::int64_t scalar(SQLite::Database& db, const std::string& sql) { return db.execAndGet(sql).getInt64(); }

// Rows of incidents that incident_ids maps to exactly (same id, same key).
std::int64_t mapped(SQLite::Database& db) {
    return scalar(db,
                  "SELECT COUNT(*) FROM incidents i JOIN incident_ids n "
                  "ON n.incident_key = i.incident_key AND n.id = i.id");
}

class IncidentIds : public isync::test::sqlite_store_test {
protected:
    void SetUp() override { open_store(); }

    upsert_counts commit(const std::vector<incident>& page) {
        auto r = store_->commit_page(page, t1);
        if (!r) throw std::runtime_error("commit_page failed: " + r.error().message);
        return *r;
    }
};

}  // namespace

TEST(PendingIncidentIds, FindsWhatWasAddedAndNothingElse) {
    pending_incident_ids pending(4);  // 8 slots: ids share slots and probe on
    EXPECT_TRUE(pending.empty());
    EXPECT_EQ(pending.find("a"), pending_incident_ids::no_key);
    pending.add("c", 3);
    pending.add("a", 1);
    pending.add("b", 2);
    EXPECT_FALSE(pending.full());
    pending.add("ab", 4);
    EXPECT_TRUE(pending.full());
    EXPECT_EQ(pending.size(), 4U);
    EXPECT_EQ(pending.find("a"), 1);
    EXPECT_EQ(pending.find("b"), 2);
    EXPECT_EQ(pending.find("c"), 3);
    EXPECT_EQ(pending.find("ab"), 4);
    EXPECT_EQ(pending.find("abc"), pending_incident_ids::no_key);
    EXPECT_EQ(pending.find(""), pending_incident_ids::no_key);

    pending.clear();
    EXPECT_TRUE(pending.empty());
    for (const char* id : {"a", "b", "c", "ab"}) EXPECT_EQ(pending.find(id), pending_incident_ids::no_key) << id;
    pending.add("b", 7);
    EXPECT_EQ(pending.find("b"), 7);
}

TEST(PendingIncidentIds, HandsOutItsIdsInByteOrder) {
    pending_incident_ids pending(100);
    std::vector<std::string> ids;
    for (int i = 0; i < 60; ++i) {
        ids.push_back(id_number(i));
        pending.add(ids.back(), i + 1);
    }
    ids.push_back("Z");  // by bytes: between the digits and the lower-case letters
    pending.add("Z", 61);
    std::vector<std::string> seen;
    pending.for_each_in_id_order([&](std::string_view id, std::int64_t key) {
        seen.emplace_back(id);
        const auto at = std::find(ids.begin(), ids.end(), std::string(id));
        ASSERT_NE(at, ids.end());
        EXPECT_EQ(key, at - ids.begin() + 1) << id;
    });
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(seen, ids);
}

TEST_F(IncidentIds, AfterEachCommitEveryIncidentIsMappedByItsIdAndNothingElse) {
    std::vector<incident> page;
    for (int i = 0; i < 120; ++i) page.push_back(example(id_number(i)));
    commit(std::vector<incident>(page.begin(), page.begin() + 70));
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incident_ids"), 70);
    EXPECT_EQ(mapped(*db_), 70);
    const auto counts = commit(page);  // 70 again, unchanged, and 50 new
    EXPECT_EQ(counts.unchanged, 70);
    EXPECT_EQ(counts.inserted, 50);
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incidents"), 120);
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incident_ids"), 120);
    EXPECT_EQ(mapped(*db_), 120);
}

TEST_F(IncidentIds, AnIncidentSeenAgainAfterAnEarlyFlushInTheSameTransactionIsUpdatedNotDoubled) {
    // A writer whose pending ids fill after 2 incidents: it flushes them into
    // incident_ids mid-transaction, and must find them there, as it finds
    // those still pending.
    isync::store::statement_registry statements(*db_);
    isync::store::change_history history(*db_, statements);
    isync::store::incident_writer writer(*db_, statements, history, 2);
    const std::string now = "2023-01-22T15:07:40.000Z";
    upsert_counts counts;
    // They live until flush_children(): child rows are bound without copies.
    const std::vector<incident> first{example("a1"), example("b2"), example("c3")};
    const std::vector<incident> again{example("a1", "critical"), example("c3", "critical")};
    db_->exec("BEGIN IMMEDIATE");
    for (const auto& inc : first) writer.upsert(inc, now, counts);
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incident_ids"), 2) << "flushed when full, inside the transaction";
    for (const auto& inc : again) writer.upsert(inc, now, counts);
    writer.flush_children();
    writer.flush_new_ids();
    db_->exec("COMMIT");
    EXPECT_EQ(counts.inserted, 3);
    EXPECT_EQ(counts.changed, 2);
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incidents"), 3);
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incidents WHERE risk_level = 'critical'"), 2);
    EXPECT_EQ(mapped(*db_), 3);
}

TEST_F(IncidentIds, ATransactionThatFailsLeavesNoIdBehind) {
    store_->set_step_hook([](std::string_view step) {
        if (step == "commit") throw std::runtime_error("injected failure at commit");
    });
    ASSERT_FALSE(store_->commit_page(std::vector<incident>{example("lost1"), example("lost2")}, t1).has_value());
    store_->set_step_hook(nullptr);
    // The next transaction reuses the rolled-back keys: ids still pending
    // from the failed one would be flushed with them.
    commit({example("kept1")});
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incident_ids"), 1);
    EXPECT_EQ(db_->execAndGet("SELECT id FROM incident_ids").getString(), "kept1");
    EXPECT_EQ(mapped(*db_), 1);
}

TEST_F(IncidentIds, AnIncidentDeletedByHandIsStoredAgainUnderItsNewKey) {
    commit({example("x1"), example("x2")});
    // A person's retention job: delete the newest incident (its key is then
    // reused) and its children; incident_ids still names it.
    db_->exec("PRAGMA foreign_keys=ON");
    db_->exec("DELETE FROM incidents WHERE id = 'x2'");
    db_->exec("PRAGMA foreign_keys=OFF");
    commit({example("y3")});  // takes x2's old key
    const auto counts = commit({example("x2")});
    EXPECT_EQ(counts.inserted, 1) << "x2 is new again, not an update of y3";
    EXPECT_EQ(db_->execAndGet("SELECT id FROM incidents WHERE incident_key = "
                              "(SELECT incident_key FROM incident_ids WHERE id = 'y3')")
                  .getString(),
              "y3");
    EXPECT_EQ(scalar(*db_, "SELECT COUNT(*) FROM incidents"), 3);
    EXPECT_EQ(mapped(*db_), 3);
    EXPECT_EQ(db_->execAndGet("PRAGMA integrity_check").getString(), "ok");
}

namespace {

// A version-6 database by its own migrations, holding `stored` as incident 1
// with an action, an argument and a change, and `more` other incidents.
void make_version6(const std::string& path, const incident& stored, int more = 0) {
    SQLite::Database old(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    old.exec("PRAGMA foreign_keys=ON");
    for (const auto& m : isync::store::embedded_migrations()) {
        if (m.version > 6) break;
        // 003 only recomputes the hashes of stored rows with the daemon's
        // SQL function, and there are none yet.
        if (m.version == 3) continue;
        old.exec(std::string(m.sql));
    }
    old.exec("PRAGMA user_version=6");
    SQLite::Statement insert(old,
                             "INSERT INTO incidents (id, risk_level, raw_json, content_hash, substance_hash, "
                             "first_synced_at, last_synced_at, content_changed_at) "
                             "VALUES (?, 'high', ?, ?, 0, 'x', 'x', 'x')");
    insert.bind(1, stored.id);
    insert.bind(2, stored.raw_json);
    insert.bind(3, isync::util::hash_bytes(stored.raw_json));
    insert.exec();
    old.exec("INSERT INTO actions (incident_key, ordinal, type) VALUES (1, 0, 'network')");
    old.exec("INSERT INTO action_args (incident_key, action_ordinal, name, value) VALUES (1, 0, 'url', 'u')");
    old.exec(
        "INSERT INTO incident_changes (incident_key, observed_at, field, old_value, new_value) "
        "VALUES (1, 'x', 'risk_level', 'low', 'high')");
    old.exec("BEGIN");
    for (int i = 0; i < more; ++i) {
        insert.reset();
        insert.bind(1, id_number(i));
        insert.exec();
    }
    old.exec("COMMIT");
}

}  // namespace

TEST(IncidentIdsMigration, Version7KeepsEveryRowAndReferenceAndDropsOnlyTheUniqueConstraint) {
    temp_dir dir;
    const std::string path = dir.file("v6.db");
    const incident stored = documented_example_incident();
    make_version6(path, stored);
    {
        SQLite::Database old(path, SQLite::OPEN_READONLY);
        ASSERT_TRUE(
            contains(old.execAndGet("SELECT sql FROM sqlite_schema WHERE name = 'incidents'").getString(), "UNIQUE"));
    }
    auto db = open_database({.path = path});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    SQLite::Database& d = **db;
    EXPECT_EQ(d.execAndGet("PRAGMA user_version").getInt(), isync::store::latest_schema_version());
    EXPECT_EQ(d.execAndGet("PRAGMA foreign_keys").getInt(), 1) << "switched back on after migrating";
    EXPECT_FALSE(
        contains(d.execAndGet("SELECT sql FROM sqlite_schema WHERE name = 'incidents'").getString(), "UNIQUE"));
    EXPECT_EQ(d.execAndGet("SELECT id || ' ' || incident_key FROM incident_ids").getString(), stored.id + " 1");
    // Dropping the old table deleted no child by cascade, and the views still join.
    EXPECT_EQ(scalar(d, "SELECT COUNT(*) FROM actions"), 1);
    EXPECT_EQ(scalar(d, "SELECT COUNT(*) FROM action_args"), 1);
    EXPECT_EQ(scalar(d, "SELECT COUNT(*) FROM incident_changes"), 1);
    EXPECT_EQ(d.execAndGet("SELECT incident_id FROM incident_action_args").getString(), stored.id);
    EXPECT_EQ(d.execAndGet("SELECT incident_id FROM incident_history").getString(), stored.id);
    EXPECT_EQ(d.execAndGet("PRAGMA integrity_check").getString(), "ok");
    EXPECT_EQ(scalar(d, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
    for (const char* index : {"incidents_by_pair_last_seen", "incidents_by_last_seen", "incidents_by_risk",
                              "incidents_by_script", "incidents_by_id"})
        EXPECT_EQ(scalar(d, std::string("SELECT COUNT(*) FROM sqlite_schema WHERE name = '") + index + "'"), 1)
            << index;
    SQLite::Statement plan(d, "EXPLAIN QUERY PLAN SELECT * FROM incidents WHERE id = 'x'");
    std::string details;
    while (plan.executeStep()) details += plan.getColumn(3).getString() + "; ";
    EXPECT_TRUE(contains(details, "incidents_by_id")) << details;

    // The writer finds the migrated incident by its id: the same bytes write nothing.
    incident_store store(d, path);
    const auto again = store.commit_page(std::vector<incident>{stored}, t1);
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(again->unchanged, 1);
    EXPECT_EQ(scalar(d, "SELECT COUNT(*) FROM incidents"), 1);
}

TEST(IncidentIdsMigration, ALongUpgradeSaysItIsStillWorkingAndANewDatabaseSaysNothing) {
    temp_dir dir;
    std::vector<std::string> calls;
    const auto record = [&](std::string_view what) { calls.emplace_back(what); };
    {
        // Every 0 ms: each progress check calls it (5,000 rows to copy take
        // far more than one check's 100,000 SQLite steps).
        const std::string path = dir.file("v6.db");
        make_version6(path, documented_example_incident(), 5000);
        auto db = open_database({.path = path, .still_migrating = record, .still_migrating_every = {}});
        ASSERT_TRUE(db.has_value()) << db.error().message;
        EXPECT_EQ(scalar(**db, "SELECT COUNT(*) FROM incident_ids"), 5001);
    }
    ASSERT_GE(calls.size(), 2U) << "once at the start, then from SQLite's progress checks";
    EXPECT_TRUE(contains(calls.front(), "schema 7")) << calls.front();
    calls.clear();
    auto fresh = open_database({.path = dir.file("new.db"), .still_migrating = record});
    ASSERT_TRUE(fresh.has_value()) << fresh.error().message;
    EXPECT_TRUE(calls.empty()) << "a new database rewrites no table";
}
