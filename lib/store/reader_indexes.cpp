#include "store/reader_indexes.hpp"

#include "store/database.hpp"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace isync::store {

// Schema 005's statements, character for character (DeferredIndexes tests hold
// them equal to what SQLite stores for the migrated schema).
const std::array<deferred_trigger, 3> vulnerable_package_count_triggers{{
    {"vulnerable_package_counts_after_insert",
     R"sql(CREATE TRIGGER vulnerable_package_counts_after_insert AFTER INSERT ON vulnerability_ids
BEGIN
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT NEW.package, NEW.version, NEW.vulnerability_id, 0, NULL
    WHERE NOT EXISTS (SELECT 1 FROM vulnerable_package_counts
                      WHERE package IS NEW.package AND version IS NEW.version
                        AND vulnerability_id = NEW.vulnerability_id);
    UPDATE vulnerable_package_counts
    SET incidents = incidents + NOT EXISTS (SELECT 1 FROM vulnerability_ids
                                            WHERE incident_key = NEW.incident_key
                                              AND vulnerability_ordinal <> NEW.vulnerability_ordinal
                                              AND vulnerability_id = NEW.vulnerability_id
                                              AND package IS NEW.package AND version IS NEW.version),
        last_seen = COALESCE(MAX(last_seen, NEW.incident_last_seen), last_seen, NEW.incident_last_seen)
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id;
END)sql"},
    {"vulnerable_package_counts_after_delete",
     R"sql(CREATE TRIGGER vulnerable_package_counts_after_delete AFTER DELETE ON vulnerability_ids
BEGIN
    UPDATE vulnerable_package_counts
    SET incidents = incidents - NOT EXISTS (SELECT 1 FROM vulnerability_ids
                                            WHERE incident_key = OLD.incident_key
                                              AND vulnerability_id = OLD.vulnerability_id
                                              AND package IS OLD.package AND version IS OLD.version),
        last_seen = CASE WHEN OLD.incident_last_seen IS NULL OR OLD.incident_last_seen < last_seen THEN last_seen
                         ELSE (SELECT MAX(incident_last_seen) FROM vulnerability_ids
                               WHERE package IS OLD.package AND version IS OLD.version
                                 AND vulnerability_id = OLD.vulnerability_id) END
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id;
    DELETE FROM vulnerable_package_counts
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id
      AND incidents = 0;
END)sql"},
    {"vulnerable_package_counts_after_update",
     R"sql(CREATE TRIGGER vulnerable_package_counts_after_update
AFTER UPDATE OF incident_key, vulnerability_id, package, version, incident_last_seen ON vulnerability_ids
BEGIN
    DELETE FROM vulnerable_package_counts
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id;
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
    FROM vulnerability_ids
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id
    GROUP BY package, version, vulnerability_id;
    DELETE FROM vulnerable_package_counts
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id;
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
    FROM vulnerability_ids
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id
    GROUP BY package, version, vulnerability_id;
END)sql"},
}};

const std::string_view vulnerable_package_counts_fill =
    R"sql(INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
FROM vulnerability_ids
GROUP BY package, version, vulnerability_id)sql";

const std::string_view vulnerable_packages_view = R"sql(CREATE VIEW vulnerable_packages AS
SELECT package, version, vulnerability_id, incidents, last_seen
FROM vulnerable_package_counts)sql";

// Schema 004's.
const std::string_view vulnerable_packages_view_without_counts = R"sql(CREATE VIEW vulnerable_packages AS
SELECT package, version, vulnerability_id,
       COUNT(DISTINCT incident_key) AS incidents,
       MAX(incident_last_seen) AS last_seen
FROM vulnerability_ids
GROUP BY package, version, vulnerability_id)sql";

namespace {

// Those of `wanted` that `db`'s schema holds no `type` (index, trigger) of the same name.
template <class Item, std::size_t N>
std::vector<Item> missing_from_schema(SQLite::Database& db, const char* type, const std::array<Item, N>& wanted) {
    SQLite::Statement exists(db, "SELECT 1 FROM sqlite_schema WHERE type = ? AND name = ?");
    exists.bind(1, type);
    std::vector<Item> missing;
    for (const auto& item : wanted) {
        exists.bind(2, std::string(item.name));
        if (!exists.executeStep()) missing.push_back(item);
        exists.reset();
    }
    return missing;
}

}  // namespace

std::vector<deferred_index> missing_deferred_indexes(SQLite::Database& db) {
    return missing_from_schema(db, "index", deferred_indexes);
}

std::vector<deferred_trigger> missing_vulnerable_package_count_triggers(SQLite::Database& db) {
    return missing_from_schema(db, "trigger", vulnerable_package_count_triggers);
}

void reader_indexes::defer_while_empty() {
    try {
        // A database with incidents and without the indexes (or the
        // summary's triggers) is one whose first backfill stopped early:
        // build() makes them.
        deferred_ = true;
        if (!db_.execAndGet("SELECT NOT EXISTS (SELECT 1 FROM incidents)").getInt()) {
            build();
            return;
        }
        SQLite::Transaction txn(db_, SQLite::TransactionBehavior::IMMEDIATE);
        for (const auto& index : deferred_indexes) db_.exec(fmt::format("DROP INDEX IF EXISTS {}", index.name));
        // Without its triggers the summary would go stale: the view computes
        // the same rows from vulnerability_ids (slower) until it is built.
        for (const auto& trigger : vulnerable_package_count_triggers)
            db_.exec(fmt::format("DROP TRIGGER IF EXISTS {}", trigger.name));
        db_.exec("DELETE FROM vulnerable_package_counts");
        db_.exec("DROP VIEW IF EXISTS vulnerable_packages");
        db_.exec(std::string(vulnerable_packages_view_without_counts));
        txn.commit();
        spdlog::debug("empty database: indexes and the vulnerable_packages summary are built after the first pass");
    } catch (const std::exception& e) {
        spdlog::warn("{}", sqlite_error(e, path_, "preparing a first backfill (dropping reader indexes)").message);
    }
}

void reader_indexes::build() {
    if (!deferred_) return;
    try {
        const auto missing = missing_deferred_indexes(db_);
        const bool counts_missing = !missing_vulnerable_package_count_triggers(db_).empty();
        if (missing.empty() && !counts_missing) {
            deferred_ = false;
            return;
        }
        const auto started = std::chrono::steady_clock::now();
        // CREATE INDEX sorts in memory up to the page cache's size before it
        // spills to a temporary file; a quarter of it keeps the daemon's peak
        // memory where a backfill has it (measured: +3.5 MiB with the full cache).
        const int cache_size = db_.execAndGet("PRAGMA cache_size").getInt();
        db_.exec(fmt::format("PRAGMA cache_size={}", cache_size / 4));
        struct restore_cache {
            SQLite::Database& db;
            int size;
            ~restore_cache() {
                try {
                    db.exec(fmt::format("PRAGMA cache_size={}", size));
                } catch (...) {  // only a smaller cache: slower, still correct
                }
            }
        } restore{db_, cache_size};
        SQLite::Transaction txn(db_, SQLite::TransactionBehavior::IMMEDIATE);
        for (const auto& index : missing) db_.exec(std::string(index.definition));
        if (counts_missing) {
            // After the indexes: the fill's GROUP BY is then one ordered pass
            // over vulnerability_ids_by_package, and its rows arrive in the
            // order of the summary's own key. Every trigger again, even one
            // that survived: the table is only exact with all three.
            for (const auto& trigger : vulnerable_package_count_triggers)
                db_.exec(fmt::format("DROP TRIGGER IF EXISTS {}", trigger.name));
            db_.exec("DELETE FROM vulnerable_package_counts");
            db_.exec(std::string(vulnerable_package_counts_fill));
            for (const auto& trigger : vulnerable_package_count_triggers) db_.exec(std::string(trigger.definition));
            db_.exec("DROP VIEW IF EXISTS vulnerable_packages");
            db_.exec(std::string(vulnerable_packages_view));
        }
        txn.commit();
        deferred_ = false;
        spdlog::info(
            "built {} index(es) for readers{} in {} ms", missing.size(),
            counts_missing ? " and the vulnerable_packages summary" : "",
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
    } catch (const std::exception& e) {
        spdlog::warn("{}; it is tried again when the daemon is next idle",
                     sqlite_error(e, path_, "building the indexes for readers").message);
    }
}

}  // namespace isync::store
