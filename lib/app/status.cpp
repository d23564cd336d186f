#include "app/status.hpp"

#include "pgstore/pg_store.hpp"

#include "store/database.hpp"
#include "store/sync_state.hpp"
#include "util/timestamp.hpp"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>

namespace isync::app {
namespace {

std::optional<std::string> iso(const std::optional<std::int64_t>& ms) {
    if (!ms) return std::nullopt;
    return util::format_iso8601_ms(*ms);
}

std::string progress_text(const sync::pair_progress& p, std::int64_t now_ms) {
    const auto rate = ops::rate_of(p, now_ms);
    std::string out = fmt::format("slice {} of {}, {} of {} incidents read, {:.0f}/s", p.slice, p.slices, p.read,
                                  p.window_count, rate.per_second);
    if (rate.eta_seconds) out += fmt::format(", ETA {}s", *rate.eta_seconds);
    return out;
}

}  // namespace

status_options status_options_for(const config::config& cfg) {
    status_options o;
    o.database_path = cfg.database.path;
    o.configured = cfg.sync.pairs;
    o.discover = cfg.sync.discover;
    o.policy = {cfg.sync.interval, cfg.sync.settle, cfg.sync.discover};
    o.busy_timeout = cfg.database.busy_timeout;
    return o;
}

namespace {

// Every stored pair with its incident count, from SQLite or PostgreSQL
// (whose description goes to `postgresql`).
result<std::vector<store::stored_pair_state>> read_stored(const status_options& options, std::string& postgresql) {
    if (options.postgresql) {
        auto pg = pgstore::pg_store::open_existing(*options.postgresql);
        if (!pg) return pg.error();
        postgresql = (*pg)->description();
        return (*pg)->sync_states_with_counts();
    }
    auto db = store::open_database({options.database_path, options.busy_timeout, /*read_only=*/true});
    if (!db) return db.error();
    return store::read_sync_states(**db, options.database_path, /*count_incidents=*/true);
}

}  // namespace

result<status_result> read_status(const status_options& options, std::int64_t now_ms) {
    status_result out;
    auto stored = read_stored(options, out.postgresql);
    if (!stored) return stored.error();

    // With PostgreSQL there is no progress file: the database says what it knows.
    if (!options.postgresql) out.daemon = ops::read_live_progress(options.database_path);
    std::map<config::pair, pair_report> by_pair;
    std::map<config::pair, ops::pair_facts> facts;
    std::vector<config::pair> configured = options.configured;
    if (options.discover) {
        configured.clear();  // judge_all, unless a running daemon says what it polls
        if (out.daemon && out.daemon->polled) configured = *out.daemon->polled;
    }
    for (const auto& p : configured) {
        by_pair[p].pair = p;
        facts[p].pair = p;
    }
    for (const auto& s : *stored) {
        auto& r = by_pair[s.pair];
        r.pair = s.pair;
        r.watermark = iso(s.watermark_ms);
        r.last_success_at = iso(s.last_success_ms);
        r.last_error_at = iso(s.last_error_ms);
        // An error that a later success cleared is history, not state.
        if (s.last_error_ms && (!s.last_success_ms || *s.last_error_ms > *s.last_success_ms))
            r.last_error = s.last_error;
        r.auth_failing = s.auth_failing;
        r.incidents = s.incidents;
        r.lease_owner = s.lease_owner;
        auto& f = facts[s.pair];
        f.pair = s.pair;
        f.last_success_ms = s.last_success_ms;
        f.last_error_ms = s.last_error_ms;
        f.watermark_ms = s.watermark_ms;
        f.auth_failing = s.auth_failing;
    }
    const bool judge_all = configured.empty();
    std::vector<ops::pair_facts> ordered;
    for (auto& [p, f] : facts) {
        f.configured = judge_all || std::find(configured.begin(), configured.end(), p) != configured.end();
        if (out.daemon) {
            if (auto it = out.daemon->pairs.find(p); it != out.daemon->pairs.end()) {
                f.poll_started_ms = it->second.poll_started_ms;
                by_pair[p].progress = it->second;
            }
        }
        ordered.push_back(f);
    }
    out.health = ops::judge_health(ordered, now_ms, options.policy);
    for (const auto& v : out.health.pairs) {
        auto& r = by_pair[v.pair];
        r.configured = v.state != ops::pair_state::removed;
        r.state = v.state;
        r.reason = v.reason;
        r.healthy = v.healthy;
        out.pairs.push_back(std::move(r));
    }
    return out;
}

result<std::vector<pair_report>> read_status(const config::config& cfg, std::int64_t now_ms) {
    auto r = read_status(status_options_for(cfg), now_ms);
    if (!r) return r.error();
    return std::move(r->pairs);
}

std::string format_status_table(const std::vector<pair_report>& reports) {
    std::string out = fmt::format("{:<14} {:<28} {:<26} {:<26} {:>10}  {:<12} {}\n", "APP_ID", "TLD", "WATERMARK",
                                  "LAST_SUCCESS", "INCIDENTS", "STATE", "DETAIL");
    for (const auto& r : reports) {
        std::string detail = r.reason;
        if (r.last_error) detail += fmt::format("; last error at {}: {}", r.last_error_at.value_or("?"), *r.last_error);
        if (r.auth_failing) detail = "[auth failing] " + detail;
        if (detail.size() > 160) {
            detail.resize(160);
            detail += "...";
        }
        out += fmt::format("{:<14} {:<28} {:<26} {:<26} {:>10}  {:<12} {}\n", r.pair.app_id, r.pair.tld,
                           r.watermark.value_or("-"), r.last_success_at.value_or("never"), r.incidents,
                           ops::state_name(r.state), detail);
    }
    return out;
}

std::string format_status_json(const std::vector<pair_report>& reports) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    auto opt = [&](const char* key, const std::optional<std::string>& v) {
        w.Key(key);
        if (v)
            w.String(*v);
        else
            w.Null();
    };
    w.StartObject();
    w.Key("pairs");
    w.StartArray();
    for (const auto& r : reports) {
        w.StartObject();
        w.Key("app_id");
        w.String(r.pair.app_id);
        w.Key("tld");
        w.String(r.pair.tld);
        opt("watermark", r.watermark);
        opt("last_success_at", r.last_success_at);
        opt("last_error_at", r.last_error_at);
        opt("last_error", r.last_error);
        w.Key("auth_failing");
        w.Bool(r.auth_failing);
        w.Key("incidents");
        w.Int64(r.incidents);
        w.Key("configured");
        w.Bool(r.configured);
        w.Key("state");
        w.String(ops::state_name(r.state));
        w.Key("reason");
        w.String(r.reason);
        w.Key("healthy");
        w.Bool(r.healthy);
        opt("lease_owner", r.lease_owner);
        if (r.progress) {
            w.Key("progress");
            w.StartObject();
            w.Key("slice");
            w.Int(r.progress->slice);
            w.Key("slices");
            w.Int(r.progress->slices);
            w.Key("read");
            w.Int64(r.progress->read);
            w.Key("window_count");
            w.Int64(r.progress->window_count);
            w.EndObject();
        }
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string format_status(const status_result& r, bool json, std::int64_t now_ms) {
    if (json) {
        std::string out = format_status_json(r.pairs);
        out.resize(out.size() - 2);  // reopen the object: "}\n"
        rapidjson::StringBuffer buf;
        rapidjson::Writer<rapidjson::StringBuffer> w(buf);
        w.String(r.health.summary);
        out += fmt::format(",\"healthy\":{},\"health\":{},\"daemon_pid\":{}}}\n", r.health.healthy ? "true" : "false",
                           std::string_view(buf.GetString(), buf.GetSize()),
                           r.daemon ? std::to_string(r.daemon->pid) : std::string("null"));
        return out;
    }
    std::string out;
    if (!r.postgresql.empty())
        out = fmt::format(
            "database: PostgreSQL {}\ndaemon: not tracked here (daemons sharing a PostgreSQL database keep no progress "
            "file; see each one's /metrics)\n",
            r.postgresql);
    else
        out = r.daemon ? fmt::format("daemon: running (pid {})\n", r.daemon->pid)
                       : std::string("daemon: not running (no live progress file)\n");
    out += "health: " + r.health.summary + "\n\n";
    out += format_status_table(r.pairs);
    if (!r.postgresql.empty())
        for (const auto& p : r.pairs)
            out += fmt::format("  {}/{}: {}\n", p.pair.app_id, p.pair.tld,
                               p.lease_owner ? "polled by " + *p.lease_owner : std::string("no daemon holds it now"));
    for (const auto& p : r.pairs)
        if (p.progress)
            out += fmt::format("  {}/{} polling: {}\n", p.pair.app_id, p.pair.tld, progress_text(*p.progress, now_ms));
    return out;
}

}  // namespace isync::app
