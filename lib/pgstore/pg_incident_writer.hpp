#pragma once
// Writing incidents and what hangs off them into PostgreSQL, a batch at a
// time: the same rules as SQLite's incident_writer (an incident whose bytes
// the database holds is not written; a changed one has its history recorded,
// its row updated and its child rows replaced; a script is written when its
// hash changes), with one statement per table per batch. Each statement reads
// its rows from unnest() of arrays: one round trip however many rows, and no
// statement touches a key twice (ids are unique within a batch: the caller
// splits a page where an id repeats).

#include "model/incident.hpp"
#include "pgstore/pg_connection.hpp"
#include "store/slice_report.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

namespace isync::pgstore {

class pg_incident_writer {
public:
    // `conn` must outlive the writer.
    explicit pg_incident_writer(pg_connection& conn) : conn_(conn) {}

    // Writes the incidents of `batch` (ids distinct) inside the caller's
    // transaction, observed at `now_text`, and counts them. Throws
    // pg_exception.
    store::upsert_counts write(std::span<const model::incident* const> batch, const std::string& now_text);

    // The content hash stored for incident `id` (nullopt when not stored).
    std::optional<std::int64_t> stored_content_hash(const std::string& id);
    // The same for each incident of `page`, in order, in one statement.
    std::vector<std::optional<std::int64_t>> stored_content_hashes(std::span<const model::raw_incident> page);

    // The transaction rolled back: the cached script rows may be undone.
    void forget_uncommitted() noexcept { script_cache_.clear(); }

private:
    struct stored_incident {
        std::int64_t incident_key = 0;
        std::int64_t content_hash = 0;
        // The tracked fields as history compares them.
        std::optional<std::string> risk_level, under_review, category, ack_updated_at, script_risk;
    };
    struct script_row {
        std::int64_t script_key;
        std::int64_t content_hash;
    };
    using stored_map = std::unordered_map<std::string, stored_incident>;

    stored_map find_incidents(std::span<const model::incident* const> batch);
    // Writes the scripts of `incidents` that the database lacks or holds
    // with another hash; their script_key by script key afterwards.
    void upsert_scripts(std::span<const model::incident* const> incidents,
                        std::span<const model::incident_hashes> hashes);
    // incident_changes rows for the incidents about to be rewritten.
    void record_changes(std::span<const model::incident* const> changed, const stored_map& stored,
                        const std::string& now_text);
    // Add their statements to `pipeline` (sent at once by write()).
    void delete_children(const std::vector<std::int64_t>& incident_keys,
                         std::vector<pg_connection::statement>& pipeline);
    void insert_children(std::span<const model::incident* const> incidents,
                         const std::unordered_map<std::string, std::int64_t>& keys,
                         std::vector<pg_connection::statement>& pipeline);

    pg_connection& conn_;
    // script key -> row; only holds committed rows (cleared on rollback).
    std::unordered_map<std::string, script_row> script_cache_;
};

}  // namespace isync::pgstore
