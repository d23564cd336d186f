#pragma once
// What the sync engine and its writer thread need from a database, and all
// they may use: the seam between syncing and storing. SQLite's
// incident_store implements it today; a second backend (PostgreSQL, issue
// 14) implements the same and the engine does not change.
//
// The contract every backend keeps:
//  - write_page() adds a page to the transaction begin() opened; when
//    `finish` is given, the same transaction moves the pair's watermark to
//    finish->to_ms (never backwards; not at all when !finish->moves_watermark)
//    and records an `ok` sync_runs row. Data and watermark commit together or
//    not at all;
//  - a failed write_page() or commit() has rolled the whole transaction back
//    (every page since begin()) before it returns;
//  - errors name the database and say what to do; errc::database_busy when
//    another writer holds it;
//  - one thread uses a store at a time (the writer thread while an engine
//    lives), except interrupt_waits(), which any thread may call.

#include "config/config.hpp"
#include "model/incident.hpp"
#include "store/slice_report.hpp"
#include "store/sync_state.hpp"
#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace isync::store {

class sync_store {
public:
    virtual ~sync_store() = default;

    // A write transaction: begin, pages, commit (or rollback).
    virtual result<void> begin() = 0;
    virtual result<upsert_counts> write_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                             const slice_report* finish = nullptr,
                                             std::span<const model::unknown_field> unknown_fields = {}) = 0;
    virtual result<void> commit() = 0;
    virtual void rollback() noexcept = 0;
    virtual bool in_transaction() const = 0;
    // The content hash stored for incident `id` (nullopt when not stored),
    // inside a transaction; a failure rolls it back.
    virtual result<std::optional<std::int64_t>> stored_content_hash(const std::string& id) = 0;
    // The same for every incident of a page, in order: one round trip where
    // the database is across a connection (the default asks one at a time).
    virtual result<std::vector<std::optional<std::int64_t>>> stored_content_hashes(
        std::span<const model::raw_incident> page) {
        std::vector<std::optional<std::int64_t>> out;
        out.reserve(page.size());
        for (const auto& raw : page) {
            auto h = stored_content_hash(raw.id);
            if (!h) return h.error();
            out.push_back(*h);
        }
        return out;
    }

    // A slice that failed: a `failed` sync_runs row and the pair's last
    // error, in a transaction of its own; the watermark is not touched.
    virtual result<void> record_failure(const slice_report& report, std::string_view error_text, std::int64_t now_ms,
                                        bool auth_failure) = 0;
    // The pair's watermark (epoch ms), nullopt before its first finished slice.
    virtual result<std::optional<std::int64_t>> watermark(const config::pair& pair) = 0;
    // Every pair's stored state, without incident counts.
    virtual result<std::vector<stored_pair_state>> sync_states() = 0;

    // Several daemons sharing one database (PostgreSQL). A backend that
    // allows one daemon per database (SQLite: the instance lock) keeps these
    // defaults: every pair is this daemon's.
    //
    // Whether it shares: then the engine claims each pair before polling it
    // and renews its leases every lease_renew_every().
    virtual bool shares_work() const { return false; }
    virtual std::chrono::milliseconds lease_renew_every() const { return std::chrono::seconds(10); }
    // Whether this daemon may poll `pair` now: claims (or renews) its lease.
    // False while another daemon holds it, or when this one already holds
    // its share of `pairs_total` among the daemons alive (it then gives the
    // pair up, for another to take). Outside a transaction.
    virtual result<bool> claim_pair(const config::pair& /*pair*/, std::size_t /*pairs_total*/) { return true; }
    // After claim_pair() returned false because another daemon holds the
    // pair: how soon that lease lapses unless renewed (zero: not known), so
    // that the pair is tried again right then.
    virtual std::chrono::milliseconds claim_again_in() const { return std::chrono::milliseconds(0); }
    // The heartbeat: renews every lease held, and gives up those beyond this
    // daemon's share that are not `busy` (being polled). Errors are only
    // logged (the leases then held are those renewed before).
    // Returns the pairs whose leases it holds afterwards.
    virtual std::vector<config::pair> renew_leases(std::span<const config::pair> /*busy*/,
                                                   std::size_t /*pairs_total*/) {
        return {};
    }
    // Of `pairs`, those whose lease another daemon holds now, each with how
    // soon that lease lapses unless renewed. Errors are only logged (none
    // then). Outside a transaction.
    virtual std::vector<std::pair<config::pair, std::chrono::milliseconds>> held_elsewhere(
        std::span<const config::pair> /*pairs*/) {
        return {};
    }
    // How long a lease lasts as written, unless renewed (PostgreSQL: five
    // sixths of database.lease_ttl, the rest being the takeover's).
    virtual std::chrono::milliseconds lease_span() const { return std::chrono::seconds(30); }
    // Inside the open transaction, before the first page of `pair` in it:
    // fails (rolling the transaction back) when this daemon's lease on the
    // pair ended, so that a daemon another one replaced cannot write.
    virtual result<void> fence(const config::pair& /*pair*/) { return {}; }

    // No poll is running: do what was put off for readers (indexes a first
    // backfill left out, a WAL checkpoint). Errors are only logged.
    virtual void on_idle() = 0;
    // Any thread: make waits on other processes' locks (and the slow disk)
    // end now, so that a stop that takes too long rolls back instead.
    virtual void interrupt_waits() noexcept = 0;
};

}  // namespace isync::store
