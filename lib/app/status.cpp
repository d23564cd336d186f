#include "app/status.hpp"

#include "store/database.hpp"
#include "util/timestamp.hpp"

#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>

namespace isync::app {
namespace {

std::optional<std::string> column_text(SQLite::Statement& st, int i) {
    if (st.getColumn(i).isNull()) return std::nullopt;
    return st.getColumn(i).getString();
}

}  // namespace

result<std::vector<pair_report>> read_status(const config::config& cfg, std::int64_t now_ms) {
    auto db = store::open_database({cfg.database.path, cfg.database.busy_timeout, /*read_only=*/true});
    if (!db) return db.error();
    try {
        std::map<config::pair, pair_report> by_pair;
        for (const auto& p : cfg.sync.pairs) by_pair[p].pair = p;
        SQLite::Statement state(**db,
                                "SELECT app_id, tld, watermark, last_success_at, last_error_at, last_error, "
                                "auth_failing FROM sync_state");
        while (state.executeStep()) {
            config::pair p{state.getColumn(0).getString(), state.getColumn(1).getString()};
            auto& r = by_pair[p];
            r.pair = p;
            r.watermark = column_text(state, 2);
            r.last_success_at = column_text(state, 3);
            r.last_error_at = column_text(state, 4);
            r.last_error = column_text(state, 5);
            r.auth_failing = state.getColumn(6).getInt() != 0;
        }
        SQLite::Statement count(**db, "SELECT COUNT(*) FROM incidents WHERE app_id = ? AND host_domain = ?");
        const std::int64_t stale_ms = 3 * cfg.sync.interval.count();
        std::vector<pair_report> out;
        for (auto& [p, r] : by_pair) {
            count.bind(1, p.app_id);
            count.bind(2, p.tld);
            if (count.executeStep()) r.incidents = count.getColumn(0).getInt64();
            count.reset();
            const auto success = r.last_success_at ? util::parse_iso8601_ms(*r.last_success_at) : std::nullopt;
            r.healthy = success && now_ms - *success <= stale_ms && !r.auth_failing;
            out.push_back(std::move(r));
        }
        return out;
    } catch (const std::exception& e) {
        return store::sqlite_error(e, cfg.database.path, "reading the sync status");
    }
}

std::string format_status_table(const std::vector<pair_report>& reports) {
    std::string out = fmt::format("{:<14} {:<28} {:<26} {:<26} {:>10}  {}\n", "APP_ID", "TLD", "WATERMARK",
                                  "LAST_SUCCESS", "INCIDENTS", "LAST_ERROR");
    for (const auto& r : reports) {
        std::string err = r.last_error.value_or("");
        if (r.auth_failing) err = "[auth failing] " + err;
        if (err.size() > 100) err = err.substr(0, 100) + "...";
        out += fmt::format("{:<14} {:<28} {:<26} {:<26} {:>10}  {}\n", r.pair.app_id, r.pair.tld,
                           r.watermark.value_or("-"), r.last_success_at.value_or("never"), r.incidents, err);
    }
    return out;
}

std::string format_status_json(const std::vector<pair_report>& reports) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    auto opt = [&](const char* key, const std::optional<std::string>& v) {
        w.Key(key);
        if (v) w.String(*v);
        else w.Null();
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
        w.Key("healthy");
        w.Bool(r.healthy);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

}  // namespace isync::app
