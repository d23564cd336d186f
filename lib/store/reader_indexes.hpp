#pragma once
// What only readers use, and a first backfill builds at its end instead of row
// by row: incidents_by_id, two indexes on vulnerability_ids, and the vulnerable_package_counts
// summary (schema 005) with the triggers that keep it and the view that reads
// it. Their keys start with CVE ids or packages, which arrive in random order,
// so keeping them up per row touches a random leaf per row.

#include "store/deferred_index.hpp"

#include <SQLiteCpp/Database.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace isync::store {

// incidents_by_id (schema 007): readers' lookups by the API's random id (the
// writer finds incidents in incident_ids, kept in id order per transaction).
// vulnerability_ids_by_id: CVE ids arrive in random order, so maintaining it
// row by row touched a random leaf per row (a 100k backfill: 17% of its time;
// building it at the end: 0.07 s). vulnerability_ids_by_package (schema 004,
// for vulnerable_packages) is keyed by package, version and then the same
// random CVE id, so it is deferred for the same reason.
inline constexpr std::array<deferred_index, 3> deferred_indexes{
    {{"incidents_by_id", "CREATE INDEX incidents_by_id ON incidents(id)"},
     {"vulnerability_ids_by_id", "CREATE INDEX vulnerability_ids_by_id ON vulnerability_ids(vulnerability_id)"},
     {"vulnerability_ids_by_package",
      "CREATE INDEX vulnerability_ids_by_package ON vulnerability_ids(package, version, vulnerability_id, "
      "incident_last_seen)"}}};
// Those of deferred_indexes that `db` lacks (throws like any statement).
std::vector<deferred_index> missing_deferred_indexes(SQLite::Database& db);

// A trigger that a bulk load drops and creates again at its end; `definition`
// is the schema's own CREATE TRIGGER statement (a test holds the two equal).
struct deferred_trigger {
    std::string_view name;
    std::string_view definition;
};
// The triggers on vulnerability_ids that keep vulnerable_package_counts
// (schema 005) exact row by row. Its key (package, version, CVE id) is as
// random as vulnerability_ids_by_package's, so they are deferred with it.
extern const std::array<deferred_trigger, 3> vulnerable_package_count_triggers;
// Those of them that `db` lacks (throws like any statement). While any is
// missing, vulnerable_package_counts is not to be read.
std::vector<deferred_trigger> missing_vulnerable_package_count_triggers(SQLite::Database& db);
// The INSERT that fills vulnerable_package_counts from vulnerability_ids
// (schema 005 runs the same statement).
extern const std::string_view vulnerable_package_counts_fill;
// vulnerable_packages as schema 005 defines it (reading the summary), and as
// schema 004 did (a GROUP BY over vulnerability_ids: the same rows, without
// the summary), which it is while the summary is deferred.
extern const std::string_view vulnerable_packages_view;
extern const std::string_view vulnerable_packages_view_without_counts;

// Defers them for a first backfill and builds them at its end. Each step runs
// in a transaction of its own, outside the store's page transactions; errors
// are only logged: all of it is for readers.
class reader_indexes {
public:
    // `db` must outlive it; `path` is only used in messages.
    reader_indexes(SQLite::Database& db, std::string path) : db_(db), path_(std::move(path)) {}

    // On an empty database, drops the deferred indexes and the summary's
    // triggers, empties the summary and points vulnerable_packages at
    // vulnerability_ids, so that a first backfill maintains none of them. On a
    // database that holds incidents, builds whatever is missing (a daemon
    // stopped mid-backfill leaves them out).
    void defer_while_empty();
    // Once deferred: creates the missing indexes in one sorted pass each,
    // fills the summary in one GROUP BY pass, and restores its triggers and
    // the view, in one transaction. A failure leaves them deferred, to be
    // tried again.
    void build();
    bool deferred() const { return deferred_; }

private:
    SQLite::Database& db_;
    std::string path_;
    bool deferred_ = false;
};

}  // namespace isync::store
