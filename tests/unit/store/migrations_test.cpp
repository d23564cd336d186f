#include "store/migrations.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "util/hash.hpp"

#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

using namespace std::chrono_literals;
using isync::errc;
using isync::store::embedded_migrations;
using isync::store::latest_schema_version;
using isync::store::open_database;
using isync::store::open_options;
using isync::test::contains;
using isync::test::temp_dir;

namespace {

int user_version(SQLite::Database& db) { return db.execAndGet("PRAGMA user_version").getInt(); }

std::set<std::string> names_of(SQLite::Database& db, const char* type) {
    std::set<std::string> out;
    SQLite::Statement st(db, "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%'");
    st.bind(1, type);
    while (st.executeStep()) out.insert(st.getColumn(0).getString());
    return out;
}

// Every `CREATE <kind> name` in the embedded migrations, so a table added to
// schema/ later is checked without editing this test.
std::set<std::string> created_in_migrations(const char* kind) {
    std::set<std::string> out;
    const std::regex create(std::string("CREATE\\s+") + kind + "\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?(\\w+)",
                            std::regex::icase);
    for (const auto& m : embedded_migrations()) {
        const std::string sql(m.sql);
        for (auto it = std::sregex_iterator(sql.begin(), sql.end(), create); it != std::sregex_iterator(); ++it)
            out.insert((*it)[1].str());
    }
    // A table built to replace another (007's incidents_rebuilt) takes its name.
    const std::regex renamed(R"(ALTER\s+TABLE\s+(\w+)\s+RENAME\s+TO)", std::regex::icase);
    for (const auto& m : embedded_migrations()) {
        const std::string sql(m.sql);
        for (auto it = std::sregex_iterator(sql.begin(), sql.end(), renamed); it != std::sregex_iterator(); ++it)
            out.erase((*it)[1].str());
    }
    return out;
}

}  // namespace

TEST(Migrations, AreEmbeddedInAscendingOrderStartingAtOne) {
    const auto& all = embedded_migrations();
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all.front().version, 1);
    EXPECT_EQ(all.front().name, "001_initial");
    for (std::size_t i = 1; i < all.size(); ++i) EXPECT_EQ(all[i].version, all[i - 1].version + 1) << i;
    EXPECT_EQ(latest_schema_version(), all.back().version);
    EXPECT_TRUE(contains(all.front().sql, "CREATE TABLE incidents"));
}

TEST(Migrations, OnlyTheMigrationThatRebuildsATableSaysItRewrites) {
    // The daemon logs a declared rewrite and reports progress while it runs
    // (systemd's start timeout); a migration that only adds says nothing.
    for (const auto& m : embedded_migrations()) {
        const std::string note(isync::store::rewrite_note(m));
        if (m.version == 7) {
            EXPECT_TRUE(contains(note, "rebuilds the incidents table")) << note;
            EXPECT_EQ(note.find('\n'), std::string::npos);
        } else {
            EXPECT_EQ(note, "") << m.name;
        }
    }
}

TEST(Migrations, FreshDatabaseGetsTheLatestSchema) {
    temp_dir dir;
    const std::string path = dir.file("fresh.db");
    auto db = open_database({.path = path});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    EXPECT_EQ(user_version(**db), latest_schema_version());

    const std::set<std::string> tables = names_of(**db, "table");
    for (const char* t : {"scripts", "script_page_types", "incidents", "incident_page_types", "actions", "action_args",
                          "vulnerabilities", "vulnerability_ids", "sync_state", "sync_runs",
                          "vulnerable_package_counts", "incident_ids"})
        EXPECT_TRUE(tables.count(t)) << "missing table " << t;
    const std::set<std::string> views = names_of(**db, "view");
    for (const char* v : {"incidents_with_script", "open_high_risk_incidents", "vulnerable_packages",
                          "incident_actions", "incident_action_args", "incident_vulnerabilities"})
        EXPECT_TRUE(views.count(v)) << "missing view " << v;
    const std::set<std::string> indexes = names_of(**db, "index");
    for (const char* i :
         {"incidents_by_pair_last_seen", "incidents_by_last_seen", "incidents_by_risk", "incidents_by_script",
          "vulnerability_ids_by_id", "vulnerability_ids_by_package", "sync_runs_by_pair", "incidents_by_id",
          "vulnerable_package_counts_by_package", "vulnerable_package_counts_by_incidents"})
        EXPECT_TRUE(indexes.count(i)) << "missing index " << i;

    // And everything any migration creates, whatever was added since.
    for (const auto& t : created_in_migrations("TABLE")) EXPECT_TRUE(tables.count(t)) << t;
    for (const auto& v : created_in_migrations("VIEW")) EXPECT_TRUE(views.count(v)) << v;

    // Every view compiles against the tables (a view naming a missing column
    // is only an error when it is queried).
    for (const auto& v : views) EXPECT_NO_THROW(db.value()->exec("SELECT * FROM " + v + " LIMIT 0")) << v;
}

TEST(Migrations, ReopenIsANoOpAndKeepsData) {
    temp_dir dir;
    const std::string path = dir.file("reopen.db");
    {
        auto db = open_database({.path = path});
        ASSERT_TRUE(db.has_value()) << db.error().message;
        (*db)->exec("INSERT INTO sync_state (app_id, tld, watermark_ms) VALUES ('PXa', 'example.com', 42)");
    }
    for (int i = 0; i < 2; ++i) {
        auto db = open_database({.path = path});
        ASSERT_TRUE(db.has_value()) << db.error().message;
        EXPECT_EQ(user_version(**db), latest_schema_version());
        EXPECT_EQ((*db)->execAndGet("SELECT watermark_ms FROM sync_state WHERE app_id = 'PXa'").getInt64(), 42);
        EXPECT_EQ((*db)->execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE name = 'incidents'").getInt(), 1);
    }
}

TEST(Migrations, ReopenDoesNotRunMigrationsAgain) {
    temp_dir dir;
    const std::string path = dir.file("again.db");
    ASSERT_TRUE(open_database({.path = path}).has_value());
    std::int64_t changes_before = 0;
    {
        SQLite::Database raw(path, SQLite::OPEN_READWRITE);
        changes_before = raw.execAndGet("PRAGMA schema_version").getInt64();
    }
    auto db = open_database({.path = path});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    // A migration that ran again would change the schema cookie (or fail on CREATE TABLE).
    EXPECT_EQ((*db)->execAndGet("PRAGMA schema_version").getInt64(), changes_before);
}

TEST(Migrations, DatabaseFromANewerVersionIsRefused) {
    temp_dir dir;
    const std::string path = dir.file("newer.db");
    {
        SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        raw.exec("CREATE TABLE from_the_future (x)");
        raw.exec("PRAGMA user_version = " + std::to_string(latest_schema_version() + 1));
    }
    auto db = open_database({.path = path});
    ASSERT_FALSE(db.has_value());
    EXPECT_EQ(db.error().code, errc::database);
    EXPECT_TRUE(contains(db.error().message, "newer"));
    EXPECT_TRUE(contains(db.error().message, path));

    // Refusing must not have touched it.
    SQLite::Database raw(path, SQLite::OPEN_READONLY);
    EXPECT_EQ(user_version(raw), latest_schema_version() + 1);
    EXPECT_EQ(raw.execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE name = 'incidents'").getInt(), 0);
}

TEST(Migrations, ReadOnlyOpenRefusesANewerDatabaseToo) {
    temp_dir dir;
    const std::string path = dir.file("newer-ro.db");
    {
        SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        raw.exec("PRAGMA user_version = " + std::to_string(latest_schema_version() + 1));
    }
    auto db = open_database({.path = path, .read_only = true});
    ASSERT_FALSE(db.has_value());
    EXPECT_EQ(db.error().code, errc::database);
    EXPECT_TRUE(contains(db.error().message, "newer"));
}

TEST(Migrations, ReadOnlyOpenNeverCreatesOrMigrates) {
    temp_dir dir;
    const std::string path = dir.file("absent.db");
    auto db = open_database({.path = path, .read_only = true});
    ASSERT_FALSE(db.has_value());
    EXPECT_EQ(db.error().code, errc::database);
    EXPECT_TRUE(contains(db.error().message, path));
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Migrations, JournalModeIsWalAfterOpen) {
    temp_dir dir;
    const std::string path = dir.file("wal.db");
    auto db = open_database({.path = path});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    EXPECT_EQ((*db)->execAndGet("PRAGMA journal_mode").getString(), "wal");
    EXPECT_EQ((*db)->execAndGet("PRAGMA foreign_keys").getInt(), 1);
    // WAL is persistent: a plain second connection sees it too.
    SQLite::Database other(path, SQLite::OPEN_READONLY);
    EXPECT_EQ(other.execAndGet("PRAGMA journal_mode").getString(), "wal");
}

// The busy handler is the daemon's own (it can be interrupted by a stop), so
// the timeout is checked by what it does: wait about that long, then fail busy.
TEST(Migrations, BusyTimeoutIsApplied) {
    temp_dir dir;
    auto db = open_database({.path = dir.file("busy.db"), .busy_timeout = 300ms});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    SQLite::Database holder(dir.file("busy.db"), SQLite::OPEN_READWRITE);
    holder.exec("BEGIN IMMEDIATE");
    const auto started = std::chrono::steady_clock::now();
    try {
        (*db)->exec("BEGIN IMMEDIATE");
        ADD_FAILURE() << "took the write lock another connection holds";
    } catch (const std::exception& e) {
        EXPECT_EQ(isync::store::sqlite_error(e, "busy.db", "beginning").code, isync::errc::database_busy);
    }
    const auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_GE(waited, 300ms);
    EXPECT_LT(waited, 5s);
}

TEST(Migrations, AnInterruptedWaitFailsAtOnceAsACancellation) {
    temp_dir dir;
    auto db = open_database({.path = dir.file("busy.db"), .busy_timeout = 60s});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    SQLite::Database holder(dir.file("busy.db"), SQLite::OPEN_READWRITE);
    holder.exec("BEGIN IMMEDIATE");
    isync::store::interrupt_waits(**db);
    const auto started = std::chrono::steady_clock::now();
    try {
        (*db)->exec("BEGIN IMMEDIATE");
        ADD_FAILURE() << "took the write lock another connection holds";
    } catch (const std::exception& e) {
        EXPECT_EQ(isync::store::sqlite_error(e, "busy.db", "beginning").code, isync::errc::cancelled);
    }
    isync::store::reset_interrupt();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);  // not the 60 s busy_timeout
}

TEST(Migrations, AFileThatIsNotADatabaseIsRefusedNamingIt) {
    temp_dir dir;
    const std::string path = dir.file("garbage.db");
    {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        ASSERT_NE(f, nullptr);
        const std::string junk(4096, 'x');
        std::fwrite(junk.data(), 1, junk.size(), f);
        std::fclose(f);
    }
    auto db = open_database({.path = path});
    ASSERT_FALSE(db.has_value());
    EXPECT_EQ(db.error().code, errc::database);
    EXPECT_TRUE(contains(db.error().message, path));
}

TEST(Migrations, Version3RecomputesContentHashesSoAnUpgradeRewritesNothing) {
    // A database written before version 3 holds FNV-1a content hashes; after
    // the migration every stored hash is hash_bytes(raw_json), so the first
    // sync after an upgrade finds the same page unchanged.
    temp_dir dir;
    const std::string path = dir.file("upgrade.db");
    const std::vector<isync::model::incident> page{isync::test::documented_example_incident()};
    isync::util::content_hasher fnv;
    fnv.add(page[0].raw_json);
    ASSERT_NE(fnv.value(), isync::util::hash_bytes(page[0].raw_json));
    {
        // A version-2 database (its own migrations, not the latest schema
        // with its version number lowered: later migrations add columns and
        // cannot run twice), holding the incident as version 2 stored it.
        SQLite::Database old(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        for (const auto& m : embedded_migrations())
            if (m.version <= 2) old.exec(std::string(m.sql));
        old.exec("PRAGMA user_version=2");
        SQLite::Statement insert(old,
                                 "INSERT INTO incidents (id, raw_json, content_hash, substance_hash, "
                                 "first_synced_at, last_synced_at, content_changed_at) "
                                 "VALUES (?, ?, ?, 0, 'x', 'x', 'x')");
        insert.bind(1, page[0].id);
        insert.bind(2, page[0].raw_json);
        insert.bind(3, fnv.value());
        insert.exec();
    }
    auto db = open_database({.path = path});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    EXPECT_EQ(user_version(**db), latest_schema_version());
    EXPECT_EQ((*db)->execAndGet("SELECT content_hash FROM incidents").getInt64(),
              isync::util::hash_bytes(page[0].raw_json));
    isync::store::incident_store store(**db, path);
    const auto again = store.commit_page(page, 1674400060000);
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(again->unchanged, 1);
    EXPECT_EQ(again->changed, 0);
}

TEST(Migrations, ANewDatabaseGets16KiBPagesAndAnOldOneKeepsItsOwn) {
    temp_dir dir;
    {
        auto fresh = open_database({.path = dir.file("new.db")});
        ASSERT_TRUE(fresh.has_value()) << fresh.error().message;
        EXPECT_EQ((*fresh)->execAndGet("PRAGMA page_size").getInt(), 16384);
        // The checkpoint threshold is 64 MiB of log whatever the page size.
        EXPECT_EQ((*fresh)->execAndGet("PRAGMA wal_autocheckpoint").getInt(), 4096);
    }
    const std::string old_path = dir.file("old.db");
    {
        // A database made before, with SQLite's default 4 KiB pages.
        SQLite::Database old(old_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        old.exec("PRAGMA page_size=4096");
        old.exec("PRAGMA journal_mode=WAL");
        old.exec("CREATE TABLE kept (x)");
    }
    auto old = open_database({.path = old_path});
    ASSERT_TRUE(old.has_value()) << old.error().message;
    EXPECT_EQ((*old)->execAndGet("PRAGMA page_size").getInt(), 4096);
    EXPECT_EQ((*old)->execAndGet("PRAGMA wal_autocheckpoint").getInt(), 16384);
    EXPECT_EQ(user_version(**old), latest_schema_version());
    EXPECT_EQ((*old)->execAndGet("PRAGMA integrity_check").getString(), "ok");
}

TEST(Migrations, SyncRunsWrittenBeforeVersion6ReadAsPollsAndKindTakesOnlyItsTwoValues) {
    temp_dir dir;
    const std::string path = dir.file("old.db");
    {
        // Version 2 by its own migrations (003 needs the daemon's SQL
        // functions, which open_database registers when it upgrades).
        SQLite::Database old(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        for (const auto& m : embedded_migrations())
            if (m.version <= 2) old.exec(std::string(m.sql));
        old.exec("PRAGMA user_version=2");
        old.exec(
            "INSERT INTO sync_runs (app_id, tld, from_ms, to_ms, pages, incidents_seen, incidents_new, "
            "incidents_changed, drift_corrections, started_at, finished_at, status) "
            "VALUES ('PXa', 'a.example', 1, 2, 1, 0, 0, 0, 0, 'x', 'x', 'ok')");
    }
    auto db = open_database({.path = path});
    ASSERT_TRUE(db.has_value()) << db.error().message;
    EXPECT_EQ(user_version(**db), latest_schema_version());
    EXPECT_EQ((*db)->execAndGet("SELECT kind FROM sync_runs").getString(), "poll");
    EXPECT_THROW((*db)->exec("UPDATE sync_runs SET kind = 'other'"), SQLite::Exception);
    EXPECT_NO_THROW((*db)->exec("UPDATE sync_runs SET kind = 'resync'"));
}
