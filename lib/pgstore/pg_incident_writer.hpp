#pragma once
// Writing incidents and what hangs off them into PostgreSQL, a batch at a
// time: the same rules as SQLite's incident_writer (an incident whose bytes
// the database holds is not written; a changed one has its history recorded,
// its row updated and its child rows replaced; a script is written when its
// hash changes), with one statement per table per batch. Each statement reads
// its rows from unnest() of arrays, and no statement touches a key twice (ids
// are unique within a batch: the caller splits a page where an id repeats).
// Only the lookup of the batch's stored rows waits for the server; every
// write is deferred (pg_connection::defer) and goes with the transaction's
// next round trip, its COMMIT at the latest: a fresh page costs two round
// trips on a distant database, not eleven.

#include "model/incident.hpp"
#include "pgstore/pg_array.hpp"
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
    void forget_uncommitted() noexcept {
        script_cache_.clear();
        looked_up_ = {};
    }
    // The transaction committed: what was looked up inside it is not kept.
    void transaction_ended() noexcept { looked_up_ = {}; }

private:
    struct stored_incident {
        std::int64_t incident_key = 0;
        std::int64_t content_hash = 0;
        // The tracked fields as history compares them.
        std::optional<std::string> risk_level, under_review, category, ack_updated_at, script_risk;
    };
    using stored_map = std::unordered_map<std::string, stored_incident>;
    struct lookup {
        stored_map stored;                                       // the batch's stored incidents, by id
        std::unordered_map<std::string, std::int64_t> new_keys;  // incident_key for each id not stored
    };

    // The stored rows of `ids`, and a new incident_key for each id not stored.
    lookup look_up(const pg_array& ids);
    // The same for a batch, from what stored_content_hashes() kept where it can.
    lookup find_incidents(std::span<const model::incident* const> batch);
    // Writes the scripts of `incidents` that the database lacks or holds
    // with another hash (deferred: incidents find theirs by share key).
    void upsert_scripts(std::span<const model::incident* const> incidents,
                        std::span<const model::incident_hashes> hashes);
    // incident_changes rows for the incidents about to be rewritten (one
    // round trip to read their old child rows; the rows written deferred).
    void record_changes(std::span<const model::incident* const> changed, const stored_map& stored,
                        const std::string& now_text);
    // Deferred, sent with the transaction's next round trip.
    void delete_children(const std::vector<std::int64_t>& incident_keys);
    void insert_children(std::span<const model::incident* const> incidents,
                         const std::unordered_map<std::string_view, std::int64_t>& keys);

    pg_connection& conn_;
    // The last page's lookup by stored_content_hashes(), until write() uses it.
    lookup looked_up_;
    // script share key -> the content hash the database holds (or will
    // once the transaction commits: cleared on rollback).
    std::unordered_map<std::string, std::int64_t> script_cache_;
};

}  // namespace isync::pgstore
