#include "store/incident_store.hpp"

#include "store/database.hpp"
#include "util/timestamp.hpp"

#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

namespace isync::store {

incident_store::incident_store(SQLite::Database& db, std::string path)
    : db_(db),
      path_(std::move(path)),
      statements_(db),
      history_(db, statements_),
      writer_(db, statements_, history_),
      sync_log_(statements_),
      reader_indexes_(db, path_) {
    // The store keeps references itself: parents are written before their
    // children, and children are deleted explicitly before a rewrite. Checking
    // every child row's parent again cost 7% of a backfill's CPU. (A per-
    // connection setting: other connections choose their own.)
    db_.exec("PRAGMA foreign_keys=OFF");
}

result<upsert_counts> incident_store::commit_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                                  const slice_report* finish,
                                                  std::span<const model::unknown_field> unknown_fields) {
    if (auto r = begin(); !r) return r.error();
    auto counts = write_page(incidents, now_ms, finish, unknown_fields);
    if (!counts) return counts;
    if (auto r = commit(); !r) return r.error();
    return counts;
}

result<void> incident_store::begin() {
    try {
        step("begin");
        // IMMEDIATE takes the write lock up front, so a busy database fails here
        // (after busy_timeout) rather than half-way through a page.
        db_.exec("BEGIN IMMEDIATE");
        in_transaction_ = true;
        return {};
    } catch (const std::exception& e) {
        abandon_transaction();
        return sqlite_error(e, path_, "writing a page of incidents");
    }
}

result<upsert_counts> incident_store::write_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                                 const slice_report* finish,
                                                 std::span<const model::unknown_field> unknown_fields) {
    const std::string now_text = util::format_iso8601_ms(now_ms);
    try {
        upsert_counts counts = write_incidents(incidents, now_text);
        history_.record_unknown_fields(unknown_fields, now_text);
        if (finish) sync_log_.finish_slice(*finish, counts, now_text);
        return counts;
    } catch (const std::exception& e) {
        abandon_transaction();
        return sqlite_error(e, path_, "writing a page of incidents");
    }
}

upsert_counts incident_store::write_incidents(std::span<const model::incident> incidents, const std::string& now_text) {
    upsert_counts counts;
    for (const auto& inc : incidents) {
        step("incident");
        writer_.upsert(inc, now_text, counts);
    }
    writer_.flush_children();
    return counts;
}

result<void> incident_store::commit() {
    try {
        step("commit");
        writer_.flush_new_ids();
        db_.exec("COMMIT");
        in_transaction_ = false;
        step("committed");
        history_.committed();
        return {};
    } catch (const std::exception& e) {
        abandon_transaction();
        return sqlite_error(e, path_, "committing a page of incidents");
    }
}

void incident_store::rollback() noexcept { abandon_transaction(); }

void incident_store::abandon_transaction() noexcept {
    statements_.reset_all();
    if (in_transaction_ && sqlite3_get_autocommit(db_.getHandle()) == 0) {
        try {
            db_.exec("ROLLBACK");
        } catch (const std::exception& e) {
            spdlog::warn("{}", sqlite_error(e, path_, "rolling back").message);
        }
    }
    in_transaction_ = false;
    writer_.forget_uncommitted();
    history_.forget_uncommitted();
}

result<std::optional<std::int64_t>> incident_store::stored_content_hash(const std::string& id) {
    try {
        return writer_.stored_content_hash(id);
    } catch (const std::exception& e) {
        abandon_transaction();
        return sqlite_error(e, path_, "looking up a stored incident");
    }
}

result<void> incident_store::record_failure(const slice_report& report, std::string_view error_text,
                                            std::int64_t now_ms, bool auth_failure) {
    const std::string now_text = util::format_iso8601_ms(now_ms);
    const std::string error_copy(error_text);
    try {
        SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
        sync_log_.record_failure(report, error_copy, now_text, auth_failure);
        tx.commit();
        return {};
    } catch (const std::exception& e) {
        statements_.reset_all();
        return sqlite_error(e, path_, "recording a failed sync");
    }
}

result<std::optional<std::int64_t>> incident_store::watermark(const config::pair& pair) {
    try {
        return sync_log_.watermark(pair);
    } catch (const std::exception& e) {
        statements_.reset_all();
        return sqlite_error(e, path_, "reading the watermark");
    }
}

result<std::vector<stored_pair_state>> incident_store::sync_states() {
    return read_sync_states(db_, path_, /*count_incidents=*/false);
}

void incident_store::checkpoint() {
    try {
        db_.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (const std::exception& e) {
        spdlog::warn("{}", sqlite_error(e, path_, "checkpointing the write-ahead log").message);
    }
}

void incident_store::interrupt_waits() noexcept { store::interrupt_waits(db_); }

}  // namespace isync::store
