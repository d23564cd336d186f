#pragma once
// The store: writes pages of incidents, and the watermark that says they are
// complete, into the database, in transactions it owns. A transaction holds
// one page (commit_page) or several, of several pairs (begin, write_page per
// page, commit: how the writer thread groups them, sync/store_writer.hpp).
// The last page of a window slice moves the watermark in the same transaction
// as its incidents, so data and watermark commit together or not at all.
//
// It composes the parts that do each job, and converts their exceptions into
// errors that name the file:
//   incident_writer.hpp  incidents, scripts and their child rows
//   change_history.hpp   incident_changes and unknown_fields
//   sync_log.hpp         watermarks (sync_state) and sync_runs
//   reader_indexes.hpp   the indexes and summary a first backfill builds at its end
//   hashing.hpp          the hashes that decide what is written
//   slice_report.hpp     what a page and a slice did (upsert_counts, slice_report)
//   statements.hpp       every prepared statement, reset together after a failure

#include "config/config.hpp"
#include "model/incident.hpp"
#include "store/change_history.hpp"
#include "store/hashing.hpp"
#include "store/incident_writer.hpp"
#include "store/reader_indexes.hpp"
#include "store/slice_report.hpp"
#include "store/statements.hpp"
#include "store/sync_log.hpp"
#include "store/sync_state.hpp"
#include "store/sync_store.hpp"
#include "util/error.hpp"

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace isync::store {

class incident_store final : public sync_store {
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
    result<void> begin() override;
    result<upsert_counts> write_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                     const slice_report* finish = nullptr,
                                     std::span<const model::unknown_field> unknown_fields = {}) override;
    result<void> commit() override;
    void rollback() noexcept override;
    // The content hash stored for incident `id` (nullopt when not stored).
    // Inside a transaction from begin(); a failure rolls it back.
    result<std::optional<std::int64_t>> stored_content_hash(const std::string& id) override;
    bool in_transaction() const override { return in_transaction_; }
    // store::interrupt_waits on the connection (thread-safe).
    void interrupt_waits() noexcept override;

    // Records a slice that failed: a `failed` sync_runs row and the pair's
    // last error, in a transaction of its own. The watermark is not touched.
    // On failure nothing is written and the error names the file.
    result<void> record_failure(const slice_report& report, std::string_view error_text, std::int64_t now_ms,
                                bool auth_failure) override;

    // The pair's watermark (epoch ms), nullopt before its first finished
    // slice; an error naming the file when it cannot be read.
    result<std::optional<std::int64_t>> watermark(const config::pair& pair) override;

    // Every pair's stored state (store/sync_state.hpp), without incident counts.
    result<std::vector<stored_pair_state>> sync_states() override;

    // A passive WAL checkpoint, for idle moments: copies committed pages into
    // the database without waiting for readers; with journal_size_limit the
    // log file then shrinks once no reader needs it. Errors are only logged.
    void checkpoint();
    // Idle: build_deferred_indexes(), then checkpoint().
    void on_idle() override {
        build_deferred_indexes();
        checkpoint();
    }

    // Bulk load (store/reader_indexes.hpp). On an empty database, drops the
    // secondary indexes that no write reads (deferred_indexes) and the
    // triggers that keep vulnerable_package_counts
    // (vulnerable_package_count_triggers), empties that table and points
    // vulnerable_packages at vulnerability_ids, so that a first backfill
    // maintains none of them row by row; build_deferred_indexes() creates the
    // indexes again in one sorted pass, fills the table in one GROUP BY pass
    // and restores the triggers and the view, in one transaction. On a
    // database that holds incidents, makes sure they exist (a daemon stopped
    // mid-backfill leaves them out). Outside a transaction; errors are only
    // logged: all of it is for readers.
    void defer_indexes_while_empty() { reader_indexes_.defer_while_empty(); }
    void build_deferred_indexes() { reader_indexes_.build(); }
    bool indexes_deferred() const { return reader_indexes_.deferred(); }

    // Test hook, called at each store step ("begin", "incident", "commit",
    // "committed"); a throwing hook simulates a failure at that step.
    void set_step_hook(std::function<void(std::string_view step)> hook) { step_hook_ = std::move(hook); }

private:
    upsert_counts write_incidents(std::span<const model::incident> incidents, const std::string& now_text);
    // After a failed statement or commit: ready every statement again, roll
    // back and forget what the transaction added.
    void abandon_transaction() noexcept;
    void step(std::string_view name) {
        if (step_hook_) step_hook_(name);
    }

    SQLite::Database& db_;
    std::string path_;
    std::function<void(std::string_view)> step_hook_;
    bool in_transaction_ = false;
    // First: the parts below hold references to its statements.
    statement_registry statements_;
    change_history history_;
    incident_writer writer_;
    sync_log sync_log_;
    reader_indexes reader_indexes_;
};

}  // namespace isync::store
