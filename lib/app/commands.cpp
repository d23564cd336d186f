#include "app/commands.hpp"

#include "api/request.hpp"
#include "app/daemon.hpp"
#include "app/export_jsonl.hpp"
#include "app/instance_lock.hpp"
#include "app/online_check.hpp"
#include "app/postgresql_options.hpp"
#include "app/status.hpp"
#include "app/systemd_notify.hpp"
#include "config_file/loader.hpp"
#include "config_file/token.hpp"
#include "http/proxy.hpp"
#include "http/tls_context.hpp"
#include "log/logging.hpp"
#include "ops/health.hpp"
#include "ops/metrics_text.hpp"
#include "ops/ops_server.hpp"
#include "ops/progress_file.hpp"
#include "pgstore/pg_schema.hpp"
#include "pgstore/pg_store.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "sync/engine.hpp"
#include "util/timestamp.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace isync::app {
namespace {

std::int64_t wall_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void print_error(std::string_view message) { fmt::print(stderr, "incident-syncd: {}\n", message); }

result<config::config> load_config(const arguments& args) {
    auto cfg = config::load_config_file(args.config_path);
    if (!cfg) return cfg;
    if (args.log_level) {
        if (auto lvl = log::parse_level(*args.log_level); !lvl)
            return make_error(errc::usage, "--log-level: " + lvl.error().message);
        cfg->log.level = *args.log_level;
    }
    return cfg;
}

void apply_logging(const config::config& cfg) { log::init(log::parse_level(cfg.log.level).value(), cfg.log.format); }

// Values the loader accepted but questions (config::config::warnings):
// `check-config` prints them to stderr, `run`/`once` log them once logging is set.
void report_config_warnings(const config::config& cfg, bool to_log) {
    for (const auto& w : cfg.warnings) {
        if (to_log)
            spdlog::warn("{}", w);
        else
            fmt::print(stderr, "warning: {}\n", w);
    }
}

// Everything `run`/`once` needs that comes from the configuration.
struct prepared {
    config::config cfg;
    config::secret token;
    std::string token_source;
    sync::engine_settings settings;
};

int exit_code_for(const error& e) {
    switch (e.code) {
        case errc::usage:
            return exit_usage;
        case errc::database:
        case errc::io:
            return exit_database;
        case errc::database_busy:
            return exit_locked;
        default:
            return exit_config;
    }
}

result<prepared> prepare(const config::config& cfg) {
    auto token = config::load_token(cfg);
    if (!token) return token.error();
    auto proxy = http::choose_proxy(cfg.api.proxy_address, cfg.api.base.host, ::getenv);
    if (!proxy) return proxy.error();
    if (!cfg.api.proxy_password_file.empty()) {
        // The user comes from the proxy URL, the password from the file (so
        // neither the config file nor the environment holds it).
        if (!*proxy || (*proxy)->user.empty())
            return make_error(errc::config,
                              "api.proxy_password_file is set, but " +
                                  std::string(*proxy ? "the proxy URL names no user" : "no proxy is in use") +
                                  "; write the user in the proxy URL: http://user@proxy.example:3128 (in api.proxy "
                                  "or https_proxy)");
        if (!(*proxy)->password.empty())
            return make_error(errc::config,
                              "the proxy URL holds a password and api.proxy_password_file is set too; keep one "
                              "(the file keeps it out of the configuration and the environment)");
        auto password = config::load_proxy_password(cfg.api.proxy_password_file);
        if (!password) return password.error();
        (*proxy)->password = std::move(*password);
    }

    prepared p{cfg, std::move(token->token), token->source, {}};
    p.settings.sync = cfg.sync;
    p.settings.retry = cfg.retry;
    p.settings.page_size = cfg.api.page_size;
    p.settings.connection.endpoint = cfg.api.base;
    p.settings.connection.proxy = *proxy;
    p.settings.connection.timeout = cfg.api.timeout;
    p.settings.connection.body_limit = cfg.api.max_body;
    p.settings.connection.verify_peer = !cfg.api.insecure_skip_tls_verify;
    p.settings.connection.user_agent = "incident-syncd/" INCIDENT_SYNC_VERSION;
    p.settings.limits.max = cfg.api.max_in_flight;
    p.settings.limits.initial = std::min(8, cfg.api.max_in_flight);
    return p;
}

// Every refusal `run` can make before it takes the database's lock, in one
// place: `check-config` runs exactly this, so it refuses what `run` refuses
// (with the same message and exit code). Binding metrics.listen is the one
// check left to `run`: the port may be held by the daemon being checked.
struct startup {
    prepared p;
    std::shared_ptr<boost::asio::ssl::context> tls;
};

result<startup> check_startup(const config::config& cfg) {
    auto p = prepare(cfg);
    if (!p) return p.error();
    auto tls = http::make_tls_context({cfg.api.ca_file, cfg.api.insecure_skip_tls_verify});
    if (!tls) return tls.error();
    if (!config::uses_postgresql(cfg.database))
        if (auto d = store::check_database_path(cfg.database.path); !d) return d.error();
    return startup{std::move(*p), std::move(*tls)};
}

// `check-config` with database.url: connects, and checks that the schema is
// one this build can use (none yet is fine: `run` or `once` creates it). Says which
// database it reached and where the password came from.
result<std::string> check_postgresql(const config::config& cfg) {
    auto target = postgresql_options(cfg);
    if (!target) return target.error();
    auto conn = pgstore::pg_connection::connect(target->options);
    if (!conn) return conn.error();
    auto version = pgstore::check_schema(**conn);
    if (!version) return version.error();
    return fmt::format("PostgreSQL {} (schema version {}{}, password from {})", (*conn)->description(), *version,
                       *version == 0 ? ": none yet, `run` or `once` creates it" : "", target->password_source);
}

int check_config(const arguments& args) {
    auto cfg = load_config(args);
    if (!cfg) {
        print_error(cfg.error().message);
        return exit_code_for(cfg.error());
    }
    report_config_warnings(*cfg, false);
    auto s = check_startup(*cfg);
    if (!s) {
        print_error(s.error().message);
        return exit_code_for(s.error());
    }
    std::string database = cfg->database.path;
    if (config::uses_postgresql(cfg->database)) {
        auto checked = check_postgresql(*cfg);
        if (!checked) {
            print_error(checked.error().message);
            return exit_code_for(checked.error());
        }
        database = *checked;
    }
    fmt::print("{}: ok ({} pair(s){}, token from {}, database {})\n", cfg->source.string(), cfg->sync.pairs.size(),
               cfg->sync.discover ? " and discovery" : "", s->p.token_source, database);
    if (!args.online) return exit_ok;

    boost::asio::io_context ioc(1);
    online_report report;
    boost::asio::co_spawn(ioc, check_online(ioc.get_executor(), *s->tls, s->p.settings, s->p.token, wall_now_ms()),
                          [&](std::exception_ptr e, online_report r) {
                              if (e) std::rethrow_exception(e);
                              report = std::move(r);
                          });
    ioc.run();
    std::fputs(format_online_report(report, s->p.settings).c_str(), stdout);
    return report.ok() ? exit_ok : exit_sync_failed;
}

int status(const arguments& args) {
    status_options options;
    if (args.database) {
        options.database_path = *args.database;
    } else {
        auto cfg = load_config(args);
        if (!cfg) {
            print_error(cfg.error().message);
            return args.check ? exit_sync_failed : exit_code_for(cfg.error());
        }
        options = status_options_for(*cfg);
        if (config::uses_postgresql(cfg->database)) {
            auto target = postgresql_options(*cfg);
            if (!target) {
                print_error(target.error().message);
                return args.check ? exit_sync_failed : exit_code_for(target.error());
            }
            options.postgresql = target->options;
        }
    }
    const std::int64_t now = wall_now_ms();
    auto report = read_status(options, now);
    if (!report) {
        print_error(report.error().message);
        return args.check ? exit_sync_failed : exit_database;
    }
    std::fputs(format_status(*report, args.json, now).c_str(), stdout);
    if (args.check && !report->health.healthy) return exit_sync_failed;
    return exit_ok;
}

int export_command(const arguments& args) {
    export_options options;
    if (args.database) {
        options.database_path = *args.database;
    } else {
        auto cfg = load_config(args);
        if (!cfg) {
            print_error(cfg.error().message);
            return exit_code_for(cfg.error());
        }
        options.database_path = cfg->database.path;
        options.busy_timeout = cfg->database.busy_timeout;
        if (config::uses_postgresql(cfg->database)) {
            auto target = postgresql_options(*cfg);
            if (!target) {
                print_error(target.error().message);
                return exit_code_for(target.error());
            }
            options.postgresql = target->options;
        }
    }
    options.changes = args.changes;
    if (args.since) {
        options.since_ms = util::parse_time_or_ago(*args.since, wall_now_ms());
        if (!options.since_ms) {
            print_error(
                fmt::format("--since \"{}\" is neither an ISO-8601 time (2026-12-01T00:00:00Z) nor a "
                            "duration (24h, 7d)",
                            *args.since));
            return exit_usage;
        }
    }
    // A reader that goes away (`| head`) ends the export quietly: fwrite then
    // fails with EPIPE instead of the signal killing the process.
    std::signal(SIGPIPE, SIG_IGN);
    auto done = export_jsonl(options, stdout);
    if (!done) {
        print_error(done.error().message);
        return exit_code_for(done.error());
    }
    return exit_ok;
}

// Crash-consistency tests abort the process at the Nth store step (begin,
// each incident, commit, committed). Compiled out of release builds (NDEBUG),
// so the variable is ignored in production.
template <class Store>
void install_crash_hook([[maybe_unused]] Store& store) {
#ifndef NDEBUG
    const char* at = std::getenv("INCIDENT_SYNC_CRASH_AT_STEP");
    if (!at || !*at) return;
    const long target = std::strtol(at, nullptr, 10);
    store.set_step_hook([target, seen = 0L](std::string_view step) mutable {
        if (++seen == target) {
            fmt::print(stderr, "INCIDENT_SYNC_CRASH_AT_STEP: aborting at store step {} ({})\n", seen, step);
            std::abort();
        }
    });
#endif
}

// Tests force a stop's deadline path (frames left suspended when the loop
// stops) with tiny phases. Compiled out of release builds like the hook above.
void install_stop_deadline_hook([[maybe_unused]] daemon_options& options) {
#ifndef NDEBUG
    if (const char* ms = std::getenv("INCIDENT_SYNC_STOP_DEADLINE_MS"); ms && *ms) {
        options.deadline = std::chrono::milliseconds(std::max(2L, std::strtol(ms, nullptr, 10)));
        // The interrupt and the deadline in the same turn of the loop: the
        // writer cannot wake from its busy wait and hand back its pages
        // before the loop stops, so the deadline path is the one taken.
        options.interrupt_after = options.deadline;
    }
    // Progress lines every few hundred ms instead of 5 s, so a test sees them soon.
    if (const char* ms = std::getenv("INCIDENT_SYNC_PROGRESS_MS"); ms && *ms)
        options.progress_every = std::chrono::milliseconds(std::max(10L, std::strtol(ms, nullptr, 10)));
#endif
}

// The daemon proper: `once` (one pass) or `run` (until SIGTERM); with a
// `range`, the one pass of `resync` over `cfg`'s pairs.
int sync_with(const arguments& args, result<config::config> cfg, bool once, std::optional<sync::slice> range) {
    apply_logging(*cfg);
    report_config_warnings(*cfg, true);
    auto checked = check_startup(*cfg);
    if (!checked) {
        spdlog::critical("{}", checked.error().message);
        return exit_code_for(checked.error());
    }
    const prepared* p = &checked->p;
    const auto& tls = checked->tls;
    if (cfg->api.insecure_skip_tls_verify)
        spdlog::warn(
            "api.insecure_skip_tls_verify is true: the API's certificate is NOT checked; anyone on the "
            "network path can read the token and forge incidents. Use api.ca_file instead.");
    // SQLite: one daemon per file (the lock), and its store. PostgreSQL: no
    // file lock (several daemons may share one database).
    std::optional<instance_lock> lock;
    std::unique_ptr<SQLite::Database> sqlite_db;
    std::unique_ptr<store::sync_store> store;
    std::string database_text = cfg->database.path;
    if (config::uses_postgresql(cfg->database)) {
        auto target = postgresql_options(*cfg);
        auto opened = target ? pgstore::pg_store::open(target->options)
                             : result<std::unique_ptr<pgstore::pg_store>>(target.error());
        if (!opened) {
            spdlog::critical("{}", opened.error().message);
            return exit_code_for(opened.error());
        }
        database_text =
            fmt::format("PostgreSQL {} (password from {})", (*opened)->description(), target->password_source);
        (*opened)->defer_indexes_while_empty();
        install_crash_hook(**opened);
        store = std::move(*opened);
    } else {
        auto acquired = instance_lock::acquire(cfg->database.path);
        if (!acquired) {
            spdlog::critical("{}", acquired.error().message);
            return exit_code_for(acquired.error());
        }
        lock.emplace(std::move(*acquired));
        // A schema upgrade that rewrites a table can outlast systemd's start
        // timeout: ask for 30 s more every 10 s while it runs.
        auto db = store::open_database(
            {.path = cfg->database.path,
             .busy_timeout = cfg->database.busy_timeout,
             .still_migrating = [](std::string_view what) { notify_extend_start(std::chrono::seconds(30), what); }});
        if (!db) {
            spdlog::critical("{}", db.error().message);
            return exit_database;
        }
        sqlite_db = std::move(*db);
        auto sqlite_store = std::make_unique<store::incident_store>(*sqlite_db, cfg->database.path);
        sqlite_store->defer_indexes_while_empty();
        install_crash_hook(*sqlite_store);
        store = std::move(sqlite_store);
    }
    spdlog::info("incident-syncd {} {}: {} pair(s){} from {}, database {}, token from {}", INCIDENT_SYNC_VERSION,
                 once ? "once" : "run", cfg->sync.pairs.size(), cfg->sync.discover ? " and discovery" : "",
                 p->cfg.api.base_url, database_text, p->token_source);

    daemon_options options;
    options.once = once;
    options.range = range;
    options.database_path = config::uses_postgresql(cfg->database) ? "" : cfg->database.path;
    options.metrics_listen = cfg->metrics.address;
    install_stop_deadline_hook(options);
    auto reload = [&args, &cfg]() -> result<reloaded> {
        auto fresh = load_config(args);
        if (!fresh) return fresh.error();
        auto np = prepare(*fresh);
        if (!np) return np.error();
        if (fresh->database.path != cfg->database.path || fresh->database.url != cfg->database.url)
            spdlog::warn(
                "SIGHUP: the database (database.path or database.url) changed; the new one takes effect "
                "after a restart");
        apply_logging(*fresh);
        report_config_warnings(*fresh, true);
        return reloaded{np->settings, np->token, np->token_source, fresh->sync.pairs.size()};
    };
    daemon d(options, *tls, *store, p->settings, p->token, reload);
    return d.run();
}

int sync(const arguments& args, bool once) {
    auto cfg = load_config(args);
    if (!cfg) {
        print_error(cfg.error().message);
        return exit_code_for(cfg.error());
    }
    return sync_with(args, std::move(cfg), once, std::nullopt);
}

// `resync`: one pass over [--from, --to) of one pair or all, as `once` does
// it (the same lock, drift checks and atomic commits), moving no watermark.
int resync(const arguments& args) {
    auto cfg = load_config(args);
    if (!cfg) {
        print_error(cfg.error().message);
        return exit_code_for(cfg.error());
    }
    const std::int64_t now = wall_now_ms();
    const auto from = util::parse_time_or_ago(*args.from, now);
    auto to =
        args.to ? util::parse_time_or_ago(*args.to, now) : std::optional<std::int64_t>(now - cfg->sync.settle.count());
    if (!from || !to) {
        print_error(
            fmt::format("resync: {} \"{}\" is neither an ISO-8601 time (2026-12-01T00:00:00Z) nor a "
                        "duration back from now (7d)",
                        from ? "--to" : "--from", from ? *args.to : *args.from));
        return exit_usage;
    }
    if (*from >= *to) {
        print_error(fmt::format("resync: the range is empty: --from {} is not before --to {}",
                                util::format_iso8601_ms(*from), util::format_iso8601_ms(*to)));
        return exit_usage;
    }
    if (args.pair) {
        const auto slash = args.pair->find('/');
        const config::pair wanted{args.pair->substr(0, slash), args.pair->substr(slash + 1)};
        const auto& pairs = cfg->sync.pairs;
        // With discovery on, any pair may be one it finds: the API judges it.
        if (!cfg->sync.discover && std::find(pairs.begin(), pairs.end(), wanted) == pairs.end()) {
            print_error(
                fmt::format("resync: {} is not among sync.pairs in {} (and sync.discover is off); add it "
                            "there first",
                            *args.pair, args.config_path));
            return exit_usage;
        }
        cfg->sync.pairs = {wanted};
        cfg->sync.discover = false;
    }
    spdlog::info("resync: re-reading {} .. {} for {} pair(s); no watermark moves", util::format_iso8601_ms(*from),
                 util::format_iso8601_ms(*to), cfg->sync.pairs.size());
    return sync_with(args, std::move(cfg), true, sync::slice{*from, *to});
}

}  // namespace

int run_command(const arguments& args) {
    switch (args.cmd) {
        case command::help:
            std::fputs(usage_text().c_str(), stdout);
            return exit_ok;
        case command::version:
            fmt::print("incident-syncd {}\n", INCIDENT_SYNC_VERSION);
            return exit_ok;
        case command::check_config:
            return check_config(args);
        case command::status:
            return status(args);
        case command::export_lines:
            return export_command(args);
        case command::resync:
            return resync(args);
        case command::once:
            return sync(args, true);
        case command::run:
            return sync(args, false);
    }
    return exit_usage;
}

}  // namespace isync::app
