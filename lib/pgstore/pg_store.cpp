#include "pgstore/pg_store.hpp"

#include "pgstore/pg_array.hpp"
#include "pgstore/pg_reader_indexes.hpp"
#include "pgstore/pg_schema.hpp"
#include "util/timestamp.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <random>
#include <unordered_set>

namespace isync::pgstore {
namespace {

// Epoch milliseconds of a timestamptz column, in SQL.
std::string epoch_ms(std::string_view column) { return fmt::format("(extract(epoch FROM {}) * 1000)::bigint", column); }

}  // namespace

result<std::unique_ptr<pg_store>> pg_store::open(const connect_options& options) {
    auto conn = pg_connection::connect(options);
    if (!conn) return conn.error();
    if (auto m = migrate(**conn); !m) return m.error();
    try {
        // A transaction left open longer than a lease lasts (the process stopped,
        // SIGSTOP, a debugger) is ended by the server, so the lease row it
        // locks cannot keep the pair from the daemon that takes it over.
        (*conn)->set_session(
            fmt::format("SET idle_in_transaction_session_timeout = {}", lease_span_of(options.lease_ttl).count()));
    } catch (const std::exception& e) {
        return pg_error(e, (*conn)->description(), "setting up the session", false);
    }
    return std::unique_ptr<pg_store>(new pg_store(std::move(*conn), options.lease_ttl, true));
}

result<std::unique_ptr<pg_store>> pg_store::open_existing(const connect_options& options) {
    auto conn = pg_connection::connect(options);
    if (!conn) return conn.error();
    auto version = check_schema(**conn);
    if (!version) return version.error();
    if (*version == 0)
        return make_error(errc::database,
                          fmt::format("PostgreSQL database {}: no incident-sync schema yet: no daemon has synced into "
                                      "it (start `incident-syncd run` with this database.url)",
                                      (*conn)->description()));
    return std::unique_ptr<pg_store>(new pg_store(std::move(*conn), options.lease_ttl, false));
}

pg_store::pg_store(std::unique_ptr<pg_connection> conn, std::chrono::milliseconds lease_ttl, bool leasing)
    : conn_(std::move(conn)),
      writer_(*conn_),
      lease_ttl_(lease_ttl),
      lease_span_(lease_span_of(lease_ttl)),
      leasing_(leasing) {
    std::array<char, 256> host{};
    ::gethostname(host.data(), host.size() - 1);
    host_ = host.data();
    std::random_device random;
    owner_ = fmt::format("{}:{}:{:08x}", host_, ::getpid(), random());
}

pg_store::~pg_store() {
    if (!leasing_ || conn_->broken()) return;
    try {
        abandon_transaction();
        conn_->exec("UPDATE sync_state SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1",
                    {owner_});
        conn_->exec("DELETE FROM sync_daemons WHERE owner = $1", {owner_});
    } catch (const std::exception& e) {
        spdlog::warn("{} (its leases end by themselves within database.lease_ttl)",
                     failed(e, "ending this daemon's leases").message);
    }
}

error pg_store::failed(const std::exception& e, std::string_view doing) {
    return pg_error(e, conn_->description(), doing, stopping_.load());
}

result<void> pg_store::begin() {
    try {
        step("begin");
        // A connection the server or the network dropped since the last
        // transaction: one reconnect, then the error (the slice is retried).
        ensure_connected();
        // Its result is read with the transaction's first lookup.
        conn_->defer({"BEGIN", {}});
        in_transaction_ = true;
        return {};
    } catch (const std::exception& e) {
        abandon_transaction();
        return failed(e, "writing a page of incidents");
    }
}

result<store::upsert_counts> pg_store::write_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                                  const store::slice_report* finish,
                                                  std::span<const model::unknown_field> unknown_fields) {
    const std::string now_text = util::format_iso8601_ms(now_ms);
    try {
        store::upsert_counts counts;
        // Batches of distinct ids: a page that repeats an id (the API's order
        // shifted under the walk) writes the later copy after the earlier, as
        // SQLite's row-by-row writer does, and no statement touches a key twice.
        std::vector<const model::incident*> batch;
        std::unordered_set<std::string_view> ids;
        const auto flush = [&] {
            if (batch.empty()) return;
            counts += writer_.write(batch, now_text);
            batch.clear();
            ids.clear();
        };
        for (const auto& inc : incidents) {
            step("incident");
            if (ids.contains(inc.id)) flush();
            ids.insert(inc.id);
            batch.push_back(&inc);
        }
        flush();
        record_unknown_fields(unknown_fields, now_text);
        if (finish) finish_slice(*finish, counts, now_text);
        return counts;
    } catch (const std::exception& e) {
        abandon_transaction();
        return failed(e, "writing a page of incidents");
    }
}

result<void> pg_store::commit() {
    try {
        step("commit");
        conn_->exec("COMMIT");
        in_transaction_ = false;
        writer_.transaction_ended();
        step("committed");
        for (auto& [_, committed] : unknown_fields_recorded_) committed = true;
        for (const auto& w : pending_warnings_) spdlog::warn("{}", w);
        pending_warnings_.clear();
        return {};
    } catch (const std::exception& e) {
        abandon_transaction();
        return failed(e, "committing a page of incidents");
    }
}

void pg_store::rollback() noexcept { abandon_transaction(); }

void pg_store::abandon_transaction() noexcept {
    conn_->discard_deferred();  // what was sent is undone by the ROLLBACK below
    if (in_transaction_ && !conn_->broken() && conn_->transaction_open()) {
        try {
            conn_->exec("ROLLBACK");
        } catch (const std::exception& e) {
            spdlog::warn("{}", failed(e, "rolling back").message);
        }
    }
    in_transaction_ = false;
    writer_.forget_uncommitted();
    for (auto it = unknown_fields_recorded_.begin(); it != unknown_fields_recorded_.end();)
        it = it->second ? std::next(it) : unknown_fields_recorded_.erase(it);  // keep only committed ones
    pending_warnings_.clear();
}

result<std::optional<std::int64_t>> pg_store::stored_content_hash(const std::string& id) {
    try {
        return writer_.stored_content_hash(id);
    } catch (const std::exception& e) {
        abandon_transaction();
        return failed(e, "looking up a stored incident");
    }
}

result<std::vector<std::optional<std::int64_t>>> pg_store::stored_content_hashes(
    std::span<const model::raw_incident> page) {
    try {
        return writer_.stored_content_hashes(page);
    } catch (const std::exception& e) {
        abandon_transaction();
        return failed(e, "looking up stored incidents");
    }
}

void pg_store::record_unknown_fields(std::span<const model::unknown_field> fields, const std::string& now_text) {
    std::vector<const model::unknown_field*> fresh;
    for (const auto& f : fields) {
        if (unknown_fields_recorded_.contains(f.json_path)) continue;
        fresh.push_back(&f);
        unknown_fields_recorded_[f.json_path] = false;  // until the transaction commits
    }
    // In key order: two daemons inserting the same paths in opposite orders
    // would each wait for the other's row (a deadlock, one page failed).
    std::sort(fresh.begin(), fresh.end(), [](const auto* a, const auto* b) { return a->json_path < b->json_path; });
    pg_array paths, examples;
    for (const auto* f : fresh) {
        paths.add(std::string_view(f->json_path));
        examples.add(std::string_view(f->incident_id));
    }
    if (paths.empty()) return;
    conn_->defer(
        {"INSERT INTO unknown_fields (json_path, first_seen_at, example_incident_id) "
         "SELECT u.p, $3::timestamptz, u.e FROM unnest($1::text[], $2::text[]) AS u(p, e) "
         "ON CONFLICT DO NOTHING RETURNING json_path, example_incident_id",
         {paths.value(), examples.value(), now_text},
         [this](const pg_result& r) {
             for (int i = 0; i < r.rows(); ++i)
                 pending_warnings_.push_back(
                     fmt::format("the API sent a field the schema does not know: {} (e.g. incident {}); it is kept in "
                                 "raw_json and listed in the unknown_fields table",
                                 r.text(i, 0), r.text(i, 1)));
         }});
}

void pg_store::finish_slice(const store::slice_report& report, const store::upsert_counts& page,
                            const std::string& now_text) {
    store::upsert_counts totals = report.counts;
    totals += page;
    if (report.moves_watermark) {
        // Never backwards: GREATEST keeps a later watermark another pass wrote.
        conn_->defer(
            {"INSERT INTO sync_state (app_id, tld, watermark_ms, watermark, last_success_at, auth_failing) "
             "VALUES ($1, $2, $3::bigint, $4::timestamptz, $5::timestamptz, 0) "
             "ON CONFLICT (app_id, tld) DO UPDATE SET "
             "watermark_ms = GREATEST(COALESCE(sync_state.watermark_ms, EXCLUDED.watermark_ms), "
             "EXCLUDED.watermark_ms), "
             "watermark = CASE WHEN COALESCE(sync_state.watermark_ms, EXCLUDED.watermark_ms) > EXCLUDED.watermark_ms "
             "THEN sync_state.watermark ELSE EXCLUDED.watermark END, "
             "last_success_at = EXCLUDED.last_success_at, auth_failing = 0",
             {report.pair.app_id, report.pair.tld, std::to_string(report.to_ms), util::format_iso8601_ms(report.to_ms),
              now_text}});
    }
    write_run(report, report.pages + 1, totals, now_text, nullptr);
}

void pg_store::write_run(const store::slice_report& report, std::int64_t pages, const store::upsert_counts& totals,
                         const std::string& now_text, const std::string* error_text) {
    conn_->defer(
        {"INSERT INTO sync_runs (app_id, tld, from_ms, to_ms, pages, incidents_seen, incidents_new, "
         "incidents_changed, drift_corrections, started_at, finished_at, status, error, from_at, to_at, kind, daemon) "
         "VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint, $6::bigint, $7::bigint, $8::bigint, $9::bigint, "
         "$10::timestamptz, $11::timestamptz, $12, $13, $14::timestamptz, $15::timestamptz, $16, $17)",
         {report.pair.app_id, report.pair.tld, std::to_string(report.from_ms), std::to_string(report.to_ms),
          std::to_string(pages), std::to_string(totals.seen), std::to_string(totals.inserted),
          std::to_string(totals.changed), std::to_string(report.drift_corrections),
          util::format_iso8601_ms(report.started_ms), now_text, std::string(error_text ? "failed" : "ok"),
          error_text ? std::optional<std::string>(*error_text) : std::nullopt, util::format_iso8601_ms(report.from_ms),
          util::format_iso8601_ms(report.to_ms), std::string(report.moves_watermark ? "poll" : "resync"), owner_}});
}

result<void> pg_store::record_failure(const store::slice_report& report, std::string_view error_text,
                                      std::int64_t now_ms, bool auth_failure) {
    const std::string now_text = util::format_iso8601_ms(now_ms);
    const std::string error_copy(error_text);
    try {
        ensure_connected();
        conn_->defer({"BEGIN", {}});
        in_transaction_ = true;
        if (report.moves_watermark)  // a resync's failure leaves the pair's own state alone
            conn_->defer(
                {"INSERT INTO sync_state (app_id, tld, last_error_at, last_error, auth_failing) "
                 "VALUES ($1, $2, $3::timestamptz, $4, $5::smallint) ON CONFLICT (app_id, tld) DO UPDATE SET "
                 "last_error_at = EXCLUDED.last_error_at, last_error = EXCLUDED.last_error, "
                 "auth_failing = EXCLUDED.auth_failing "
                 // A daemon that lost the pair's lease does not speak for it.
                 "WHERE sync_state.lease_owner IS NULL OR sync_state.lease_owner = $6",
                 {report.pair.app_id, report.pair.tld, now_text, error_copy, std::string(auth_failure ? "1" : "0"),
                  owner_}});
        write_run(report, report.pages, report.counts, now_text, &error_copy);
        conn_->exec("COMMIT");
        in_transaction_ = false;
        return {};
    } catch (const std::exception& e) {
        abandon_transaction();
        return failed(e, "recording a failed sync");
    }
}

result<std::optional<std::int64_t>> pg_store::watermark(const config::pair& pair) {
    try {
        auto r =
            conn_->exec("SELECT watermark_ms FROM sync_state WHERE app_id = $1 AND tld = $2", {pair.app_id, pair.tld});
        if (r.rows() == 0) return std::optional<std::int64_t>();
        return r.optional_int64(0, 0);
    } catch (const std::exception& e) {
        return failed(e, "reading the watermark");
    }
}

result<std::vector<store::stored_pair_state>> pg_store::sync_states() { return read_states(false); }

result<std::vector<store::stored_pair_state>> pg_store::sync_states_with_counts() { return read_states(true); }

result<std::vector<store::stored_pair_state>> pg_store::read_states(bool count_incidents) {
    try {
        const std::string count =
            count_incidents ? "(SELECT COUNT(*) FROM incidents i WHERE i.app_id = s.app_id AND i.host_domain = s.tld)"
                            : "0";
        auto r =
            conn_->exec(fmt::format("SELECT app_id, tld, watermark_ms, {}, {}, last_error, auth_failing, {}, "
                                    "CASE WHEN lease_expires_at > now() THEN lease_owner END "
                                    "FROM sync_state s ORDER BY app_id, tld",
                                    epoch_ms("last_success_at"), epoch_ms("last_error_at"), count));
        std::vector<store::stored_pair_state> out;
        for (int i = 0; i < r.rows(); ++i) {
            store::stored_pair_state s;
            s.pair = {std::string(r.text(i, 0)), std::string(r.text(i, 1))};
            s.watermark_ms = r.optional_int64(i, 2);
            s.last_success_ms = r.optional_int64(i, 3);
            s.last_error_ms = r.optional_int64(i, 4);
            s.last_error = r.optional_text(i, 5);
            s.auth_failing = r.int64(i, 6) != 0;
            s.incidents = r.int64(i, 7);
            s.lease_owner = r.optional_text(i, 8);
            out.push_back(std::move(s));
        }
        return out;
    } catch (const std::exception& e) {
        return failed(e, "reading the sync state");
    }
}

void pg_store::interrupt_waits() noexcept {
    stopping_.store(true);
    conn_->cancel();
}

pg_store::daemons_seen pg_store::heartbeat(const config::pair* except) {
    conn_->exec(
        "INSERT INTO sync_daemons (owner, host, pid, started_at, last_seen_at) VALUES ($1, $2, $3::int, now(), now()) "
        "ON CONFLICT (owner) DO UPDATE SET last_seen_at = now()",
        {owner_, host_, std::to_string(::getpid())});
    // Alive: a heartbeat within a lease's length (heartbeats come every
    // third of lease_ttl), so that a dead daemon stops counting, and its
    // pairs fit the others' shares, when its leases lapse.
    auto r = conn_->exec(
        "SELECT (SELECT COUNT(*) FROM sync_daemons WHERE last_seen_at > now() - $2::bigint * interval '1 "
        "millisecond'), "
        "(SELECT COUNT(*) FROM sync_state WHERE lease_owner = $1 AND lease_expires_at > now() "
        "AND NOT (app_id = $3 AND tld = $4)), "
        "(SELECT GREATEST(0, (extract(epoch FROM MIN(last_seen_at) + $2::bigint * interval '1 millisecond' - now()) "
        "* 1000)::bigint) FROM sync_daemons WHERE owner <> $1 AND last_seen_at > now() - $2::bigint * interval '1 "
        "millisecond')",
        {owner_, std::to_string(lease_span_.count()), except ? except->app_id : std::string(),
         except ? except->tld : std::string()});
    return {std::max<std::int64_t>(1, r.int64(0, 0)), r.int64(0, 1), std::chrono::milliseconds(r.int64(0, 2))};
}

void pg_store::give_up(const config::pair& pair) {
    conn_->exec(
        "UPDATE sync_state SET lease_owner = NULL, lease_expires_at = NULL "
        "WHERE app_id = $1 AND tld = $2 AND lease_owner = $3",
        {pair.app_id, pair.tld, owner_});
    if (epochs_.erase(pair) > 0)
        spdlog::info("{}/{}: lease given up: this daemon holds its share of the pairs; another takes it", pair.app_id,
                     pair.tld);
}

bool pg_store::connected() { return !conn_->broken() || conn_->reconnect(); }

void pg_store::ensure_connected() {
    if (!connected()) throw pg_exception("the connection is lost and reconnecting failed", "08006");
}

void pg_store::on_idle() {
    if (!connected()) return;
    build_missing_pg_reader_indexes(*conn_);
}

void pg_store::defer_indexes_while_empty() {
    if (!connected()) return;
    defer_pg_reader_indexes_while_empty(*conn_);
}

result<bool> pg_store::claim_pair(const config::pair& pair, std::size_t pairs_total) {
    try {
        ensure_connected();
        const auto [alive, held, next_lapse] = heartbeat(&pair);
        const auto share = (static_cast<std::int64_t>(std::max<std::size_t>(1, pairs_total)) + alive - 1) / alive;
        claim_again_in_ = std::chrono::milliseconds(0);
        if (held >= share) {
            give_up(pair);
            // Its share grows when another daemon stops counting as alive.
            claim_again_in_ = next_lapse;
            return false;
        }
        // NOT EXISTS first: ON CONFLICT alone would wait for a write in flight
        // on the existing row to learn whether it conflicts.
        conn_->exec(
            "INSERT INTO sync_state (app_id, tld) SELECT $1, $2 "
            "WHERE NOT EXISTS (SELECT 1 FROM sync_state WHERE app_id = $1 AND tld = $2) ON CONFLICT DO NOTHING",
            {pair.app_id, pair.tld});
        // SKIP LOCKED: a row locked by another daemon's write is that
        // daemon's (its fence holds it until the write commits).
        auto r = conn_->exec(
            "UPDATE sync_state s SET lease_owner = $3, "
            "lease_expires_at = now() + $4::bigint * interval '1 millisecond', "
            "lease_epoch = CASE WHEN s.lease_owner = $3 THEN s.lease_epoch ELSE s.lease_epoch + 1 END "
            "FROM (SELECT app_id, tld, lease_owner, lease_expires_at > now() AS live FROM sync_state "
            "WHERE app_id = $1 AND tld = $2 FOR UPDATE SKIP LOCKED) old "
            "WHERE s.app_id = old.app_id AND s.tld = old.tld "
            "AND (old.lease_owner IS NULL OR old.lease_owner = $3 OR NOT old.live) "
            "RETURNING s.lease_epoch, old.lease_owner",
            {pair.app_id, pair.tld, owner_, std::to_string(lease_span_.count())});
        if (r.rows() == 0) {
            epochs_.erase(pair);
            // Another daemon holds it: when does its lease lapse?
            auto left = conn_->exec(
                "SELECT GREATEST(0, (extract(epoch FROM lease_expires_at - now()) * 1000)::bigint) FROM sync_state "
                "WHERE app_id = $1 AND tld = $2 AND lease_expires_at IS NOT NULL",
                {pair.app_id, pair.tld});
            claim_again_in_ = std::chrono::milliseconds(left.rows() > 0 ? left.int64(0, 0) : 0);
            return false;
        }
        const std::int64_t epoch = r.int64(0, 0);
        const auto previous = r.optional_text(0, 1);
        const auto known = epochs_.find(pair);
        if (known == epochs_.end() || known->second != epoch) {
            if (previous && *previous != owner_)
                spdlog::info("{}/{}: lease taken over from {} (its lease had ended; epoch {})", pair.app_id, pair.tld,
                             *previous, epoch);
            else
                spdlog::debug("{}/{}: lease taken (epoch {})", pair.app_id, pair.tld, epoch);
        }
        epochs_[pair] = epoch;
        return true;
    } catch (const std::exception& e) {
        return failed(e, "claiming a pair's lease");
    }
}

std::vector<config::pair> pg_store::renew_leases(std::span<const config::pair> busy, std::size_t pairs_total) {
    const auto held_pairs = [this] {
        std::vector<config::pair> out;
        for (const auto& [pair, _] : epochs_) out.push_back(pair);
        return out;
    };
    try {
        if (!connected()) return {};
        const auto seen = heartbeat(nullptr);
        const auto alive = seen.alive, held = seen.held;
        const auto share = (static_cast<std::int64_t>(std::max<std::size_t>(1, pairs_total)) + alive - 1) / alive;
        // Beyond its share (another daemon started): give up idle pairs.
        auto extra = held - share;
        for (auto it = epochs_.begin(); extra > 0 && it != epochs_.end();) {
            const config::pair pair = it->first;
            ++it;
            if (std::find(busy.begin(), busy.end(), pair) != busy.end()) continue;
            give_up(pair);
            --extra;
        }
        // Daemons gone for ten leases (killed, never stopped cleanly) leave the list.
        conn_->exec("DELETE FROM sync_daemons WHERE last_seen_at < now() - $1::bigint * interval '10 milliseconds'",
                    {std::to_string(lease_ttl_.count())});
        auto r = conn_->exec(
            "UPDATE sync_state SET lease_expires_at = now() + $2::bigint * interval '1 millisecond' "
            "WHERE lease_owner = $1 RETURNING app_id, tld, lease_epoch",
            {owner_, std::to_string(lease_span_.count())});
        std::map<config::pair, std::int64_t> renewed;
        for (int i = 0; i < r.rows(); ++i)
            renewed[config::pair{std::string(r.text(i, 0)), std::string(r.text(i, 1))}] = r.int64(i, 2);
        for (const auto& [pair, epoch] : epochs_) {
            const auto now = renewed.find(pair);
            if (now == renewed.end() || now->second != epoch)
                spdlog::warn(
                    "{}/{}: this daemon's lease ended (another daemon took the pair over while this one "
                    "could not renew it); it polls the pair again only once it holds the lease",
                    pair.app_id, pair.tld);
        }
        epochs_ = std::move(renewed);
        return held_pairs();
    } catch (const std::exception& e) {
        spdlog::warn("{} (the leases stay valid until they expire)", failed(e, "renewing the leases").message);
        return {};
    }
}

std::vector<std::pair<config::pair, std::chrono::milliseconds>> pg_store::held_elsewhere(
    std::span<const config::pair> pairs) {
    std::vector<std::pair<config::pair, std::chrono::milliseconds>> out;
    if (pairs.empty()) return out;
    try {
        if (!connected()) return out;
        // Every live lease another daemon holds (one row per pair: few).
        auto r = conn_->exec(
            "SELECT app_id, tld, GREATEST(0, (extract(epoch FROM lease_expires_at - now()) * 1000)::bigint) "
            "FROM sync_state WHERE lease_owner <> $1 AND lease_expires_at > now()",
            {owner_});
        for (int i = 0; i < r.rows(); ++i) {
            config::pair held{std::string(r.text(i, 0)), std::string(r.text(i, 1))};
            if (std::find(pairs.begin(), pairs.end(), held) != pairs.end())
                out.emplace_back(std::move(held), std::chrono::milliseconds(r.int64(i, 2)));
        }
    } catch (const std::exception& e) {
        spdlog::warn("{}", failed(e, "reading which pairs other daemons hold").message);
    }
    return out;
}

result<void> pg_store::fence(const config::pair& pair) {
    try {
        const auto epoch = epochs_.find(pair);
        if (epoch == epochs_.end()) throw lease_lost(pair);
        // Deferred: it goes with the transaction's first lookup, and a lost
        // lease fails that round trip (then the transaction rolls back whole).
        conn_->defer(
            {"UPDATE sync_state SET lease_expires_at = now() + $5::bigint * interval '1 millisecond' "
             "WHERE app_id = $1 AND tld = $2 AND lease_owner = $3 AND lease_epoch = $4::bigint "
             "RETURNING 1",
             {pair.app_id, pair.tld, owner_, std::to_string(epoch->second), std::to_string(lease_span_.count())},
             [this, pair](const pg_result& r) {
                 if (r.rows() > 0) return;
                 epochs_.erase(pair);
                 throw lease_lost(pair);
             }});
        return {};
    } catch (const std::exception& e) {
        abandon_transaction();
        return failed(e, "writing a page of incidents");
    }
}

pg_exception pg_store::lease_lost(const config::pair& pair) {
    return pg_exception(fmt::format("this daemon's lease on {}/{} ended (another daemon took the pair over, or the "
                                    "lease expired while this one was stopped or cut off); nothing of this write is "
                                    "kept",
                                    pair.app_id, pair.tld),
                        "lease");
}

}  // namespace isync::pgstore
