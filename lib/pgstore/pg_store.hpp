#pragma once
// The PostgreSQL store: store::sync_store over one libpq connection, with the
// SQLite store's contract (store/sync_store.hpp): a page's incidents, child
// rows, history, the watermark and the sync_runs row commit in one
// transaction or not at all.
//   pg_connection.hpp      the connection, statements, errors
//   pg_incident_writer.hpp incidents, scripts and child rows, a batch at a time
//   pg_schema.hpp          migrations from schema/postgresql/
//   pg_reader_indexes.hpp  the indexes a first backfill builds at its end

#include "pgstore/pg_connection.hpp"
#include "pgstore/pg_incident_writer.hpp"
#include "store/sync_store.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace isync::pgstore {

class pg_store final : public store::sync_store {
public:
    // Connects and migrates. Fails with errc::database saying what to do.
    static result<std::unique_ptr<pg_store>> open(const connect_options& options);
    // Connects to a database that has a schema this build can read, and
    // changes nothing (for `status`): errc::database when it has none yet.
    static result<std::unique_ptr<pg_store>> open_existing(const connect_options& options);

    result<void> begin() override;
    result<store::upsert_counts> write_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                            const store::slice_report* finish = nullptr,
                                            std::span<const model::unknown_field> unknown_fields = {}) override;
    result<void> commit() override;
    void rollback() noexcept override;
    bool in_transaction() const override { return in_transaction_; }
    result<std::optional<std::int64_t>> stored_content_hash(const std::string& id) override;
    result<std::vector<std::optional<std::int64_t>>> stored_content_hashes(
        std::span<const model::raw_incident> page) override;
    result<void> record_failure(const store::slice_report& report, std::string_view error_text, std::int64_t now_ms,
                                bool auth_failure) override;
    result<std::optional<std::int64_t>> watermark(const config::pair& pair) override;
    result<std::vector<store::stored_pair_state>> sync_states() override;
    // Idle: builds the reader indexes a first backfill left out
    // (pg_reader_indexes.hpp); autovacuum does the rest of SQLite's idle work.
    void on_idle() override;
    // On a database without incidents, drops the reader indexes until the
    // first backfill is done (pg_reader_indexes.hpp). For `run` and `once`.
    void defer_indexes_while_empty();
    void interrupt_waits() noexcept override;

    // Leases (schema/postgresql/002_leases.sql): each pair is polled by the
    // daemon holding its lease; the daemons alive share the pairs evenly.
    bool shares_work() const override { return true; }
    std::chrono::milliseconds lease_renew_every() const override { return lease_ttl_ / 3; }
    result<bool> claim_pair(const config::pair& pair, std::size_t pairs_total) override;
    std::vector<config::pair> renew_leases(std::span<const config::pair> busy, std::size_t pairs_total) override;
    std::vector<std::pair<config::pair, std::chrono::milliseconds>> held_elsewhere(
        std::span<const config::pair> pairs) override;
    // How long each lease lasts as written: five sixths of database.lease_ttl,
    // so that a dead daemon's pairs are taken over (the lease lapses, another
    // daemon claims it and commits the pair's next slice) within lease_ttl.
    std::chrono::milliseconds lease_span() const override { return lease_span_; }
    std::chrono::milliseconds claim_again_in() const override { return claim_again_in_; }
    result<void> fence(const config::pair& pair) override;
    // This daemon's name in sync_state.lease_owner and sync_runs.daemon: host:pid:random.
    const std::string& owner() const { return owner_; }

    // A clean stop: the leases held end now (others take the pairs at once),
    // and the heartbeat row goes.
    ~pg_store() override;

    // Every pair's state with its incident count, for `status`.
    result<std::vector<store::stored_pair_state>> sync_states_with_counts();

    // "user@host:port/dbname", for messages.
    const std::string& description() const { return conn_->description(); }
    pg_connection& connection() { return *conn_; }

    // Test hook, called at each store step ("begin", "incident", "commit",
    // "committed"), as incident_store's; a throwing hook simulates a failure.
    void set_step_hook(std::function<void(std::string_view step)> hook) { step_hook_ = std::move(hook); }

private:
    pg_store(std::unique_ptr<pg_connection> conn, std::chrono::milliseconds lease_ttl, bool leasing);
    // Upserts this daemon's heartbeat; returns the daemons alive, the pairs
    // this one holds besides `except`, and how soon the first other daemon
    // stops counting as alive unless it beats again (0: none).
    struct daemons_seen {
        std::int64_t alive;
        std::int64_t held;
        std::chrono::milliseconds next_lapse;
    };
    daemons_seen heartbeat(const config::pair* except);
    void give_up(const config::pair& pair);
    static pg_exception lease_lost(const config::pair& pair);
    void step(std::string_view name) {
        if (step_hook_) step_hook_(name);
    }
    void finish_slice(const store::slice_report& report, const store::upsert_counts& page, const std::string& now_text);
    void write_run(const store::slice_report& report, std::int64_t pages, const store::upsert_counts& totals,
                   const std::string& now_text, const std::string* error_text);
    void record_unknown_fields(std::span<const model::unknown_field> fields, const std::string& now_text);
    error failed(const std::exception& e, std::string_view doing);
    void abandon_transaction() noexcept;
    result<std::vector<store::stored_pair_state>> read_states(bool count_incidents);

    std::unique_ptr<pg_connection> conn_;
    pg_incident_writer writer_;
    bool in_transaction_ = false;
    std::atomic<bool> stopping_{false};
    std::function<void(std::string_view)> step_hook_;
    // A lease's length as written: five sixths of database.lease_ttl.
    static std::chrono::milliseconds lease_span_of(std::chrono::milliseconds lease_ttl) { return lease_ttl * 5 / 6; }
    // Whether the connection is usable, after one reconnect if the server or
    // the network dropped it; ensure_connected() throws (SQLSTATE 08006) if not.
    bool connected();
    void ensure_connected();

    std::chrono::milliseconds lease_ttl_;   // database.lease_ttl
    std::chrono::milliseconds lease_span_;  // a lease's length as written (lease_span())
    std::chrono::milliseconds claim_again_in_{0};
    bool leasing_;       // opened by a daemon (not by `status`): has a heartbeat and leases to end
    std::string host_;   // gethostname(), for sync_daemons
    std::string owner_;  // host:pid:random
    std::map<config::pair, std::int64_t> epochs_;                    // the leases this daemon holds, by epoch
    std::unordered_map<std::string, bool> unknown_fields_recorded_;  // path -> committed
    std::vector<std::string> pending_warnings_;                      // logged once the page commits
};

}  // namespace isync::pgstore
