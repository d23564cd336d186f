#pragma once
// Writing incidents and what hangs off them. An incident whose bytes the
// database already holds is not written at all; a new one is inserted; a
// changed one has its history recorded, its row updated and its child rows
// replaced. Scripts are shared by incidents: one is written when its hash
// changes, and its row is cached by key. Child rows (page types, actions,
// their arguments, vulnerabilities, CVE ids) are collected and inserted with
// multi-row INSERTs by flush_children(). Incidents are found by id in
// incident_ids, to which a transaction's new ids are added in id order just
// before it commits (flush_new_ids()).

#include "model/incident.hpp"
#include "store/change_history.hpp"
#include "store/pending_incident_ids.hpp"
#include "store/row_batch.hpp"
#include "store/slice_report.hpp"
#include "store/statements.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace isync::store {

class incident_writer {
public:
    // Prepares its statements through `statements`; `db` and `history` must outlive it.
    // `pending_capacity`: new incidents whose ids wait for flush_new_ids()
    // before it runs by itself (see pending_incident_ids).
    incident_writer(SQLite::Database& db, statement_registry& statements, change_history& history,
                    std::size_t pending_capacity = 8192);

    // The content hash stored for incident `id` (nullopt when not stored).
    // Throws like any statement.
    std::optional<std::int64_t> stored_content_hash(const std::string& id);

    // Writes `inc` unless the database holds it byte-identical, and counts it
    // in `counts`. Its child rows wait for flush_children(), so `inc` must
    // live until then (its strings are bound without copies). Throws like any
    // statement.
    void upsert(const model::incident& inc, const std::string& now_text, upsert_counts& counts);

    // Inserts the child rows collected since the last flush (throws like any statement).
    void flush_children();

    // Adds the ids of the incidents inserted since the last call to
    // incident_ids, in one pass in id order. Call it before every COMMIT
    // (throws like any statement).
    void flush_new_ids();

    // The transaction rolled back: drops the child rows not yet inserted, the
    // new ids not yet flushed and the cached script rows (the rollback may
    // have undone some).
    void forget_uncommitted() noexcept;

private:
    struct incident_row {
        std::int64_t incident_key;
        std::int64_t content_hash;
    };
    struct script_row {
        std::int64_t script_key;
        std::int64_t content_hash;
    };

    std::optional<incident_row> find_incident(const std::string& id);
    // An incident inserted in this transaction whose id is still pending.
    std::optional<incident_row> find_pending(const std::string& id);
    std::optional<std::int64_t> upsert_script(const model::script& s, std::int64_t hash);
    // Adds the incident's child rows to the batches.
    void write_children(std::int64_t incident_key, const model::incident& inc);
    void delete_children(std::int64_t incident_key);
    // Parents' tables first: the order flush_children() inserts in.
    std::array<row_batch*, 5> child_batches() {
        return {&page_type_rows_, &action_rows_, &action_arg_rows_, &vulnerability_rows_, &vulnerability_id_rows_};
    }

    SQLite::Database& db_;
    change_history& history_;
    // script key -> row; only holds committed rows (cleared on rollback).
    std::unordered_map<std::string, script_row> script_cache_;

    pending_incident_ids pending_ids_;

    SQLite::Statement& find_incident_;
    SQLite::Statement& find_by_key_;
    SQLite::Statement& insert_id_;
    SQLite::Statement& insert_incident_;
    SQLite::Statement& update_incident_;
    SQLite::Statement& find_script_;
    SQLite::Statement& insert_script_;
    SQLite::Statement& update_script_;
    SQLite::Statement& delete_script_page_types_;
    SQLite::Statement& insert_script_page_type_;
    row_batch page_type_rows_;
    row_batch action_rows_;
    row_batch action_arg_rows_;
    row_batch vulnerability_rows_;
    row_batch vulnerability_id_rows_;
    SQLite::Statement& delete_page_types_;
    SQLite::Statement& delete_actions_;
    SQLite::Statement& delete_action_args_;
    SQLite::Statement& delete_vulnerabilities_;
    SQLite::Statement& delete_vulnerability_ids_;
};

}  // namespace isync::store
