#pragma once
// Writes pages of incidents, and the watermark that says they are complete,
// into the database. One page = one transaction; the final page of a window
// slice moves the watermark in that same transaction, so data and watermark
// commit together or not at all.

#include "config/config.hpp"
#include "model/incident.hpp"
#include "store/row_batch.hpp"
#include "store/sync_state.hpp"
#include "util/error.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace isync::store {

struct upsert_counts {
    std::int64_t seen = 0;
    std::int64_t inserted = 0;
    std::int64_t changed = 0;    // row rewritten (content or last_seen moved)
    std::int64_t unchanged = 0;  // identical to the stored row: nothing written

    upsert_counts& operator+=(const upsert_counts& o) {
        seen += o.seen;
        inserted += o.inserted;
        changed += o.changed;
        unchanged += o.unchanged;
        return *this;
    }
};

// What a window slice did, for its `sync_runs` row and the watermark.
struct slice_report {
    config::pair pair;
    std::int64_t from_ms = 0;
    std::int64_t to_ms = 0;        // the watermark moves here on success
    std::int64_t started_ms = 0;
    std::int64_t pages = 0;
    upsert_counts counts;          // totals of the pages committed before this call
    std::int64_t drift_corrections = 0;
};

class incident_store {
public:
    // `db` must outlive the store; `path` is only used in error messages.
    incident_store(SQLite::Database& db, std::string path);

    // Upserts `incidents` in one BEGIN IMMEDIATE transaction. When `finish` is
    // given, the same transaction also moves the pair's watermark to
    // finish->to_ms (never backwards) and writes an `ok` sync_runs row whose
    // totals are finish->counts plus this page. On any failure nothing is
    // written and the error names the file (errc::database_busy when locked).
    // Paths in `unknown_fields` new to the database are recorded in
    // `unknown_fields` (and logged once each).
    result<upsert_counts> commit_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                      const slice_report* finish = nullptr,
                                      std::span<const model::unknown_field> unknown_fields = {});

    // The same in steps, so that a writer can group several pages (of several
    // pairs) into one transaction: begin() takes the write lock, each
    // write_page() adds a page as commit_page() would, commit() makes them all
    // durable at once. A failed write_page() or commit() rolls the whole
    // transaction back (every page since begin()) before returning the error.
    result<void> begin();
    result<upsert_counts> write_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                     const slice_report* finish = nullptr,
                                     std::span<const model::unknown_field> unknown_fields = {});
    result<void> commit();
    void rollback() noexcept;
    // The content hash stored for incident `id` (nullopt when not stored).
    // Inside a transaction from begin(); a failure rolls it back.
    result<std::optional<std::int64_t>> stored_content_hash(const std::string& id);
    bool in_transaction() const { return in_transaction_; }
    // The connection, for store::interrupt_waits (thread-safe) only.
    SQLite::Database& database() { return db_; }

    // Records a slice that failed: a `failed` sync_runs row and the pair's
    // last error. The watermark is not touched.
    result<void> record_failure(const slice_report& report, std::string_view error_text, std::int64_t now_ms,
                                bool auth_failure);

    // The pair's watermark (epoch ms), nullopt before its first commit.
    result<std::optional<std::int64_t>> watermark(const config::pair& pair);

    // Every pair's stored state (store/sync_state.hpp), without incident counts.
    result<std::vector<stored_pair_state>> sync_states();

    // A passive WAL checkpoint, for idle moments: copies committed pages into
    // the database without waiting for readers; with journal_size_limit the
    // log file then shrinks once no reader needs it. Errors are only logged.
    void checkpoint();

    // Bulk load. On an empty database, drops the secondary indexes that no
    // write reads (deferred_indexes) and the triggers that keep
    // vulnerable_package_counts (vulnerable_package_count_triggers), empties
    // that table and points vulnerable_packages at vulnerability_ids, so that
    // a first backfill maintains none of them row by row;
    // build_deferred_indexes() creates the indexes again in one sorted pass,
    // fills the table in one GROUP BY pass and restores the triggers and the
    // view, in one transaction. On a database that holds incidents, makes sure
    // they exist (a daemon stopped mid-backfill leaves them out). Outside a
    // transaction; errors are only logged: all of it is for readers.
    void defer_indexes_while_empty();
    void build_deferred_indexes();
    bool indexes_deferred() const { return indexes_deferred_; }

    // Test hook, called at each store step ("begin", "incident", "commit");
    // a throwing hook simulates a failure at that step.
    void set_step_hook(std::function<void(std::string_view step)> hook) { step_hook_ = std::move(hook); }

private:
    struct incident_row {
        std::int64_t incident_key;
        std::int64_t content_hash;
    };
    // The stored row of incident `id` (throws like any statement).
    std::optional<incident_row> find_incident(const std::string& id);

    struct script_row {
        std::int64_t script_key;
        std::int64_t content_hash;
    };

    upsert_counts write_incidents(std::span<const model::incident> incidents, const std::string& now_text);
    // After a failed statement or commit: roll back and forget what the transaction added.
    void abandon_transaction() noexcept;
    void upsert_incident(const model::incident& inc, const std::string& now_text, upsert_counts& counts);
    void record_changes(std::int64_t incident_key, const model::incident& inc, const std::string& now_text);
    void record_unknown_fields(std::span<const model::unknown_field> fields, const std::string& now_text);
    std::optional<std::int64_t> upsert_script(const model::script& s, std::int64_t hash);
    // Adds the incident's child rows to the batches; flush_children() inserts them.
    void write_children(std::int64_t incident_key, const model::incident& inc);
    void flush_children();
    std::array<row_batch*, 5> child_batches() {
        return {&page_type_rows_, &action_rows_, &action_arg_rows_, &vulnerability_rows_, &vulnerability_id_rows_};
    }
    void delete_children(std::int64_t incident_key);
    void finish_slice(const slice_report& report, const upsert_counts& page, const std::string& now_text);
    // One sync_runs row: `ok` when `error_text` is null, else `failed` with it.
    void write_run(const slice_report& report, std::int64_t pages, const upsert_counts& totals,
                   const std::string& now_text, const std::string* error_text);
    // After a failure: statements may be mid-step; make them reusable.
    void reset_statements() noexcept;
    void step(std::string_view name) {
        if (step_hook_) step_hook_(name);
    }

    SQLite::Database& db_;
    std::string path_;
    std::function<void(std::string_view)> step_hook_;
    bool in_transaction_ = false;
    bool indexes_deferred_ = false;
    // script key -> row; only holds committed rows (cleared on rollback).
    std::unordered_map<std::string, script_row> script_cache_;

    SQLite::Statement find_incident_;
    SQLite::Statement insert_incident_;
    SQLite::Statement update_incident_;
    SQLite::Statement find_script_;
    SQLite::Statement insert_script_;
    SQLite::Statement update_script_;
    SQLite::Statement delete_script_page_types_;
    SQLite::Statement insert_script_page_type_;
    row_batch page_type_rows_;
    row_batch action_rows_;
    row_batch action_arg_rows_;
    row_batch vulnerability_rows_;
    row_batch vulnerability_id_rows_;
    SQLite::Statement delete_page_types_;
    SQLite::Statement delete_actions_;
    SQLite::Statement delete_action_args_;
    SQLite::Statement delete_vulnerabilities_;
    SQLite::Statement delete_vulnerability_ids_;
    SQLite::Statement upsert_state_success_;
    SQLite::Statement upsert_state_failure_;
    SQLite::Statement insert_run_;
    SQLite::Statement select_watermark_;
    SQLite::Statement select_tracked_;
    SQLite::Statement select_action_set_;
    SQLite::Statement select_vulnerability_set_;
    SQLite::Statement insert_change_;
    SQLite::Statement insert_unknown_field_;
    std::unordered_map<std::string, bool> unknown_fields_recorded_;  // paths already in the table
    std::vector<std::string> pending_warnings_;                       // logged once the page commits
};

// An index that a bulk load builds at its end; `definition` is the schema's
// own CREATE INDEX statement (a test holds the two equal).
struct deferred_index {
    std::string_view name;
    std::string_view definition;
};
// vulnerability_ids_by_id: CVE ids arrive in random order, so maintaining it
// row by row touched a random leaf per row (a 100k backfill: 17% of its time;
// building it at the end: 0.07 s). vulnerability_ids_by_package (schema 004,
// for vulnerable_packages) is keyed by package, version and then the same
// random CVE id, so it is deferred for the same reason.
inline constexpr std::array<deferred_index, 2> deferred_indexes{
    {{"vulnerability_ids_by_id", "CREATE INDEX vulnerability_ids_by_id ON vulnerability_ids(vulnerability_id)"},
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

// The set of an incident's actions as history shows it: sorted, distinct
// `type/subtype`, comma separated ("" when none).
std::string action_set(const model::incident& inc);

// The set of its vulnerabilities: sorted `package@version (CVE, ...)`, "; " separated.
std::string vulnerability_set(const model::incident& inc);

// The hash over an incident's content except its `last_seen` timestamps: when
// it changes, `content_changed_at` moves ("seen again" is not a change).
std::int64_t substance_hash(const model::incident& inc);

// The hash over every field of a script.
std::int64_t script_hash(const model::script& s);

// All three hashes of an incident (what upsert compares).
model::incident_hashes hashes_of(const model::incident& inc);

}  // namespace isync::store
