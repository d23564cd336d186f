#include "pgstore/pg_connection.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>

namespace isync::pgstore {
namespace {

// "user@host:port/dbname" from a connection string's parsed options: never
// the password, whatever the string holds.
std::string describe(const std::string& url) {
    char* parse_error = nullptr;
    PQconninfoOption* parsed = pq().conninfo_parse(url.c_str(), &parse_error);
    if (!parsed) {
        pq().freemem(parse_error);
        return "(a database.url libpq cannot parse)";
    }
    std::string user, host, port, dbname;
    for (PQconninfoOption* o = parsed; o->keyword; ++o) {
        if (!o->val) continue;
        const std::string_view k(o->keyword);
        if (k == "user") user = o->val;
        if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
        if (k == "port") port = o->val;
        if (k == "dbname") dbname = o->val;
    }
    pq().conninfo_free(parsed);
    return fmt::format("{}{}{}{}/{}", user.empty() ? "" : user + "@", host.empty() ? "(local socket)" : host,
                       port.empty() ? "" : ":", port, dbname);
}

std::string connected_description(PGconn* conn) {
    const char* host = pq().host(conn);
    return fmt::format("{}@{}:{}/{}", pq().user(conn), host && *host ? host : "(local socket)", pq().port(conn),
                       pq().db(conn));
}

std::string trimmed(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    return std::string(text);
}

std::string connect_hint(std::string_view message) {
    if (message.find("password authentication failed") != std::string_view::npos ||
        message.find("no password supplied") != std::string_view::npos)
        return "; check the password (database.password_file, the systemd credential database-password, the Docker "
               "secret /run/secrets/database_password, PGPASSWORD, PGPASSFILE or ~/.pgpass) and the user in "
               "database.url";
    if (message.find("does not exist") != std::string_view::npos)
        return "; create it first (createdb -O <user> <name>) or fix database.url";
    if (message.find("Connection refused") != std::string_view::npos ||
        message.find("No such file or directory") != std::string_view::npos)
        return "; is PostgreSQL running and listening there? (check host and port in database.url)";
    if (message.find("timeout expired") != std::string_view::npos)
        return "; the server did not answer in 10 s: check the host, the firewall and the network";
    return "";
}

// The server's notices (e.g. "relation ... already exists, skipping" from a
// migration's IF NOT EXISTS) go to the log at debug, not raw to stderr,
// where libpq writes them by default and where they broke JSON logs.
void log_notice(void* arg, const char* message) {
    const auto* description = static_cast<const std::string*>(arg);
    spdlog::debug("PostgreSQL database {}: {}", *description, trimmed(message ? message : ""));
}

}  // namespace

std::int64_t pg_result::int64(int row, int col) const {
    if (is_null(row, col)) return 0;
    const auto t = text(row, col);
    std::int64_t v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
}

result<std::unique_ptr<pg_connection>> pg_connection::connect(const connect_options& options) {
    if (auto loaded = load_libpq(); !loaded) return loaded.error();
    // Ours first, so that the URL's own settings override them; the password
    // after it, so that database.password_file wins over libpq's sources.
    std::vector<const char*> keys{"application_name",    "connect_timeout",  "keepalives",       "keepalives_idle",
                                  "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname"};
    std::vector<const char*> values{
        options.application_name.c_str(), "10", "1", "30", "10", "3", "60000", options.url.c_str()};
    if (options.password) {
        keys.push_back("password");
        values.push_back(options.password->reveal().c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* conn = pq().connectdb_params(keys.data(), values.data(), /*expand_dbname=*/1);
    if (!conn) return make_error(errc::database, "PostgreSQL: out of memory while connecting");
    if (pq().status(conn) != CONNECTION_OK) {
        const std::string message = trimmed(pq().error_message(conn));
        pq().finish(conn);
        return make_error(errc::database, fmt::format("PostgreSQL database {}: connecting failed: {}{}",
                                                      describe(options.url), message, connect_hint(message)));
    }
    auto c = std::unique_ptr<pg_connection>(new pg_connection(conn));
    try {
        // Every timestamp the store formats or extracts is UTC, whatever the
        // server's or the role's default.
        c->set_session("SET TIME ZONE 'UTC'");
        // A plan for each execution, made with the tables' sizes now. A
        // cached generic plan made while a fresh database's tables were
        // nearly empty scans them whole (a hash join where an index lookup
        // belongs) once they hold 100,000 rows: a fresh backfill then took
        // up to twice as long, and ever longer as it grew. Planning these
        // statements costs far less than running them.
        c->set_session("SET plan_cache_mode = force_custom_plan");
    } catch (const std::exception& e) {
        return pg_error(e, c->description(), "setting up the session", false);
    }
    return c;
}

pg_connection::pg_connection(PGconn* conn) : conn_(conn), description_(connected_description(conn)) {
    cancel_ = pq().get_cancel(conn_);
    pq().set_notice_processor(conn_, log_notice, &description_);
}

pg_connection::~pg_connection() {
    if (cancel_) pq().free_cancel(cancel_);
    pq().finish(conn_);
}

bool pg_connection::reconnect() {
    sent_.clear();  // the old session's pipeline went with it
    pq().reset(conn_);
    prepared_.clear();  // a new session has none
    std::lock_guard lock(cancel_mutex_);
    if (cancel_) pq().free_cancel(cancel_);
    cancel_ = pq().get_cancel(conn_);
    if (broken()) return false;
    try {
        for (const auto& setting : session_settings_) exec(setting);
    } catch (const std::exception&) {
        return false;
    }
    return true;
}

void pg_connection::set_session(std::string statement) {
    exec(statement);
    session_settings_.push_back(std::move(statement));
}

void pg_connection::cancel() noexcept {
    std::lock_guard lock(cancel_mutex_);
    if (!cancel_) return;
    std::array<char, 256> err{};
    pq().cancel(cancel_, err.data(), static_cast<int>(err.size()));
}

pg_result pg_connection::exec(const std::string& sql) {
    if (!sent_.empty()) return exec(sql, params{});
    ++round_trips_;
    PGresult* r = pq().exec(conn_, sql.c_str());
    const auto status = pq().result_status(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(r, sql);
    return pg_result(r);
}

pg_result pg_connection::exec(const std::string& sql, const params& values) {
    // One round trip for the statements defer() sent before it and this one:
    // a pipeline, ended by a sync (which also flushes this statement).
    send({sql, values}, false);
    ++round_trips_;
    auto ended = end_pipeline();
    auto sent = std::move(sent_);
    sent_.clear();
    if (ended.first_failure) fail(ended.first_failure, sent[ended.failed_at].sql);
    if (!ended.complete) fail(nullptr, sql);
    for (std::size_t i = 0; i < sent.size(); ++i)
        if (sent[i].check) sent[i].check(ended.results[i]);
    return std::move(ended.results.back());
}

bool pg_connection::transaction_open() const { return pq().transaction_status(conn_) != PQTRANS_IDLE; }

void pg_connection::defer(statement s) { send(std::move(s), true); }

void pg_connection::send(statement s, bool flush) {
    if (sent_.empty() && pq().enter_pipeline_mode(conn_) != 1) fail(nullptr, s.sql);
    std::vector<const char*> raw;
    raw.reserve(s.values.size());
    for (const auto& v : s.values) raw.push_back(v ? v->c_str() : nullptr);
    bool sent = true;
    if (raw.empty()) {
        // BEGIN, COMMIT, a SET: unprepared.
        sent = pq().send_query_params(conn_, s.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    } else {
        auto name = prepared_.find(s.sql);
        if (name == prepared_.end()) {
            // First use on this connection: prepared in the pipeline, ahead of
            // its first execution.
            const std::string fresh = "isync_" + std::to_string(names_made_++);
            sent = pq().send_prepare(conn_, fresh.c_str(), s.sql.c_str(), static_cast<int>(raw.size()), nullptr) == 1;
            if (sent) {
                name = prepared_.emplace(s.sql, fresh).first;
                sent_.push_back({s.sql, {}, s.sql});
            }
        }
        // Binary values may hold NUL bytes: they go with their lengths.
        std::vector<int> lengths, formats;
        if (!s.formats.empty()) {
            formats.assign(raw.size(), 0);
            lengths.assign(raw.size(), 0);
            for (std::size_t i = 0; i < raw.size(); ++i) {
                if (i < s.formats.size()) formats[i] = s.formats[i];
                if (s.values[i]) lengths[i] = static_cast<int>(s.values[i]->size());
            }
        }
        sent = sent && pq().send_query_prepared(conn_, name->second.c_str(), static_cast<int>(raw.size()), raw.data(),
                                                lengths.empty() ? nullptr : lengths.data(),
                                                formats.empty() ? nullptr : formats.data(), 0) == 1;
    }
    if (!sent) {
        if (sent_.empty()) pq().exit_pipeline_mode(conn_);
        fail(nullptr, s.sql);
    }
    sent_.push_back({std::move(s.sql), std::move(s.check), {}});
    // Out to the server now, so that it runs while the caller goes on. A
    // blocking flush also reads what the server sends meanwhile, so neither
    // side can stall the other on full socket buffers.
    if (flush && pq().flush(conn_) != 0) fail(nullptr, sent_.back().sql);
}

pg_connection::pipeline_results pg_connection::end_pipeline() {
    pipeline_results out;
    // Every result is read, up to the sync, whatever failed: only then is the
    // connection usable again.
    const bool synced = pq().pipeline_sync(conn_) == 1;
    for (std::size_t i = 0; synced && i < sent_.size(); ++i) {
        PGresult* kept = nullptr;
        bool ok = false;
        while (PGresult* r = pq().get_result(conn_)) {
            const auto status = pq().result_status(r);
            const bool good = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
            ok = ok || good;
            if (!good && status != PGRES_PIPELINE_ABORTED && !out.first_failure) {
                out.first_failure = r;
                out.failed_at = i;
            } else if (!kept && good) {
                kept = r;
            } else {
                pq().clear(r);
            }
        }
        // A statement prepared in a pipeline that failed before it: its name
        // does not exist on the server.
        if (!ok && !sent_[i].prepares.empty()) prepared_.erase(sent_[i].prepares);
        out.results.emplace_back(kept);
    }
    if (synced) {
        while (PGresult* r = pq().get_result(conn_)) {
            const bool sync = pq().result_status(r) == PGRES_PIPELINE_SYNC;
            pq().clear(r);
            if (sync) {
                out.complete = out.results.size() == sent_.size();
                break;
            }
        }
    }
    if (!out.complete)
        for (const auto& s : sent_)
            if (!s.prepares.empty()) prepared_.erase(s.prepares);  // unknown whether they exist: prepared again
    pq().exit_pipeline_mode(conn_);
    return out;
}

void pg_connection::discard_deferred() noexcept {
    if (sent_.empty()) return;
    try {
        auto ended = end_pipeline();
        pq().clear(ended.first_failure);
    } catch (...) {
        // Only allocation can throw here; the connection is then reset by
        // the caller's broken()/reconnect() path.
    }
    sent_.clear();
}

void pg_connection::fail(PGresult* r, std::string_view sql) {
    std::string message = trimmed(r ? pq().result_error_message(r) : pq().error_message(conn_));
    if (message.empty()) message = trimmed(pq().error_message(conn_));
    const char* state = r ? pq().result_error_field(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string sqlstate = state ? state : "";
    pq().clear(r);
    // The statement's first words say which one failed; its values (which may
    // hold incident data) never go in the message.
    const auto head = sql.substr(0, std::min<std::size_t>(sql.find_first_of("(\n"), 60));
    throw pg_exception(fmt::format("{} (in: {}...)", message, trimmed(head)), std::move(sqlstate));
}

error pg_error(const std::exception& e, std::string_view database, std::string_view doing, bool stopping) {
    if (const auto* ee = dynamic_cast<const error_exception*>(&e)) return ee->get();
    std::string state;
    if (const auto* pe = dynamic_cast<const pg_exception*>(&e)) state = pe->sqlstate();
    if (state == "57014" || (stopping && state.empty()))
        return make_error(errc::cancelled,
                          fmt::format("PostgreSQL database {}: {} stopped: the daemon is stopping", database, doing));
    // 40001 serialization failure, 40P01 deadlock, 55P03 lock not available.
    const bool busy = state == "40001" || state == "40P01" || state == "55P03";
    std::string hint;
    if (state == "42501") hint = "; the role lacks a privilege: grant the daemon's role the writer role's rights";
    if (state == "53100") hint = "; the database server's disk is full: free space there";
    if (state.empty() || state.starts_with("08")) hint = "; the connection was lost: the next attempt reconnects";
    return make_error(busy ? errc::database_busy : errc::database,
                      fmt::format("PostgreSQL database {}: {} failed: {}{}", database, doing, e.what(), hint));
}

}  // namespace isync::pgstore
