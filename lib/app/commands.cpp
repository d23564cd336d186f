#include "app/commands.hpp"

#include "api/request.hpp"
#include "app/instance_lock.hpp"
#include "app/status.hpp"
#include "app/systemd_notify.hpp"
#include "config/loader.hpp"
#include "config/token.hpp"
#include "http/proxy.hpp"
#include "http/tls_context.hpp"
#include "log/logging.hpp"
#include "ops/health.hpp"
#include "ops/metrics_text.hpp"
#include "ops/progress_file.hpp"
#include "ops/ops_server.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "sync/engine.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace isync::app {
namespace net = boost::asio;
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

void apply_logging(const config::config& cfg) {
    log::init(log::parse_level(cfg.log.level).value(), cfg.log.format);
}

// Everything `run`/`once` needs that comes from the configuration.
struct prepared {
    config::config cfg;
    std::string token;
    std::string token_source;
    sync::engine_settings settings;
};

int exit_code_for(const error& e) {
    switch (e.code) {
    case errc::usage: return exit_usage;
    case errc::database: return exit_database;
    case errc::database_busy: return exit_locked;
    default: return exit_config;
    }
}

result<prepared> prepare(const config::config& cfg) {
    auto token = config::load_token(cfg);
    if (!token) return token.error();
    auto endpoint = api::parse_base_url(cfg.api.base_url);
    if (!endpoint) return endpoint.error();
    auto proxy = http::choose_proxy(cfg.api.proxy, endpoint->host, ::getenv);
    if (!proxy) return proxy.error();

    prepared p{cfg, token->token.reveal(), token->source, {}};
    p.settings.sync = cfg.sync;
    p.settings.retry = cfg.retry;
    p.settings.page_size = cfg.api.page_size;
    p.settings.connection.endpoint = *endpoint;
    p.settings.connection.proxy = *proxy;
    p.settings.connection.timeout = cfg.api.timeout;
    p.settings.connection.body_limit = cfg.api.max_body;
    p.settings.connection.verify_peer = !cfg.api.insecure_skip_tls_verify;
    p.settings.connection.user_agent = "incident-syncd/" INCIDENT_SYNC_VERSION;
    return p;
}

int check_config(const arguments& args) {
    auto cfg = load_config(args);
    if (!cfg) {
        print_error(cfg.error().message);
        return exit_code_for(cfg.error());
    }
    auto p = prepare(*cfg);
    if (!p) {
        print_error(p.error().message);
        return exit_code_for(p.error());
    }
    if (auto tls = http::make_tls_context({cfg->api.ca_file, cfg->api.insecure_skip_tls_verify}); !tls) {
        print_error(tls.error().message);
        return exit_config;
    }
    fmt::print("{}: ok ({} pair(s), token from {}, database {})\n", cfg->source.string(), cfg->sync.pairs.size(),
               p->token_source, cfg->database.path);
    return exit_ok;
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

std::optional<std::uint64_t> file_size(const std::string& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return std::nullopt;
    return size;
}

// The engine's facts in the shape the health rule takes (ops/health.hpp).
std::vector<ops::pair_facts> engine_facts(const sync::engine& engine) {
    std::vector<ops::pair_facts> out;
    for (const auto& [pair, h] : engine.health())
        out.push_back({pair, true, h.last_success_ms, h.last_error_ms, h.watermark_ms, h.auth_failing,
                       h.poll_started_ms});
    return out;
}

// /metrics, /healthz and /readyz, from the engine's counters and the files.
ops::http_reply answer_ops_request(const sync::engine& engine, const std::string& db_path, std::string_view target) {
    const std::string_view path = target.substr(0, target.find('?'));
    const std::int64_t now = wall_now_ms();
    const auto health = engine.health();
    if (path == "/metrics") {
        const ops::metrics_input in{engine.stats(), health, now, file_size(db_path), file_size(db_path + "-wal"),
                                    engine.progress()};
        return {200, "text/plain; version=0.0.4; charset=utf-8", ops::render_metrics(in)};
    }
    // Answering at all proves the event loop turns.
    if (path == "/healthz") return {200, "application/json", "{\"status\":\"ok\"}\n"};
    if (path == "/readyz") {
        const auto& sync = engine.settings().sync;
        const auto verdict = ops::judge_health(engine_facts(engine), now, {sync.interval, sync.settle});
        const auto r = ops::render_readiness(verdict);
        return {r.ready ? 200u : 503u, "application/json", r.reason + "\n"};
    }
    return {404, "text/plain; charset=utf-8", "not found: try /metrics, /healthz or /readyz\n"};
}

// Crash-consistency tests abort the process at the Nth store step (begin,
// each incident, commit, committed). Compiled out of release builds (NDEBUG),
// so the variable is ignored in production.
void install_crash_hook([[maybe_unused]] store::incident_store& store) {
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

// The daemon proper: `once` (one pass) or `run` (until SIGTERM).
int sync(const arguments& args, bool once) {
    auto cfg = load_config(args);
    if (!cfg) {
        print_error(cfg.error().message);
        return exit_code_for(cfg.error());
    }
    apply_logging(*cfg);
    auto p = prepare(*cfg);
    if (!p) {
        spdlog::critical("{}", p.error().message);
        return exit_code_for(p.error());
    }
    auto tls = http::make_tls_context({cfg->api.ca_file, cfg->api.insecure_skip_tls_verify});
    if (!tls) {
        spdlog::critical("{}", tls.error().message);
        return exit_config;
    }
    if (cfg->api.insecure_skip_tls_verify)
        spdlog::warn("api.insecure_skip_tls_verify is true: the API's certificate is NOT checked; anyone on the "
                     "network path can read the token and forge incidents. Use api.ca_file instead.");
    auto lock = instance_lock::acquire(cfg->database.path);
    if (!lock) {
        spdlog::critical("{}", lock.error().message);
        return exit_code_for(lock.error());
    }
    auto db = store::open_database({cfg->database.path, cfg->database.busy_timeout, false});
    if (!db) {
        spdlog::critical("{}", db.error().message);
        return exit_database;
    }
    store::incident_store store(**db, cfg->database.path);
    store.defer_indexes_while_empty();
    install_crash_hook(store);
    spdlog::info("incident-syncd {} {}: {} pair(s) from {}, database {}, token from {}", INCIDENT_SYNC_VERSION,
                 once ? "once" : "run", cfg->sync.pairs.size(), p->cfg.api.base_url, cfg->database.path,
                 p->token_source);

    net::io_context ioc(1);
    sync::engine engine(ioc.get_executor(), **tls, store, p->settings, p->token, sync::system_clock_source());
    engine.on_pair_done([&engine](const config::pair& pair, sync::pair_status s) {
        std::size_t ok = 0;
        for (const auto& [_, st] : engine.last_status()) ok += st == sync::pair_status::ok;
        notify_status(fmt::format("{} pair(s) ok of {}; last: {}/{} {}", ok, engine.last_status().size(), pair.app_id,
                                  pair.tld, s == sync::pair_status::ok ? "ok" : "failed"));
    });

    // The metrics endpoint belongs to `run`; a one-shot `once` has nothing to be scraped for.
    std::unique_ptr<ops::ops_server> ops_endpoint;
    if (!once && !cfg->metrics.listen.empty()) {
        const std::string db_path = cfg->database.path;
        auto started = ops::ops_server::start(ioc.get_executor(), cfg->metrics.listen, [&engine, db_path](std::string_view target) {
            return answer_ops_request(engine, db_path, target);
        });
        if (!started) {
            spdlog::critical("{}", started.error().message);
            return exit_config;
        }
        ops_endpoint = std::move(*started);
        spdlog::info("metrics on http://{}:{}/metrics (also /healthz, /readyz)",
                     cfg->metrics.listen.substr(0, cfg->metrics.listen.rfind(':')), ops_endpoint->port());
    }

    int exit_code = exit_ok;
    bool stopping = false;
    net::steady_timer stop_deadline(ioc);
    net::steady_timer watchdog(ioc);
    net::signal_set signals(ioc, SIGINT, SIGTERM, SIGHUP);

    auto begin_stop = [&](const char* why) {
        if (stopping) return;
        stopping = true;
        spdlog::info("{}: stopping; requests in flight are cancelled, pages already fetched are committed", why);
        notify_stopping();
        engine.stop();
        signals.cancel();
        watchdog.cancel();
        if (ops_endpoint) ops_endpoint->stop();
        // Bounded stop: whatever has not finished in 8 s is abandoned with the loop.
        stop_deadline.expires_after(std::chrono::seconds(8));
        stop_deadline.async_wait([&](boost::system::error_code ec) {
            if (!ec) {
                spdlog::warn("tasks did not finish within 8 s; stopping the event loop");
                ioc.stop();
            }
        });
    };

    std::function<void()> wait_signal = [&] {
        signals.async_wait([&](boost::system::error_code ec, int signo) {
            if (ec) return;
            if (signo == SIGHUP) {
                auto fresh = load_config(args);
                auto np = fresh ? prepare(*fresh) : result<prepared>(fresh.error());
                if (!np) {
                    spdlog::error("SIGHUP: configuration not reloaded, keeping the running one: {}", np.error().message);
                } else {
                    if (fresh->database.path != cfg->database.path)
                        spdlog::warn("SIGHUP: database.path changed; the new path takes effect after a restart");
                    apply_logging(*fresh);
                    engine.reconfigure(np->settings, np->token);
                    spdlog::info("SIGHUP: configuration and token reloaded ({} pair(s), token from {})",
                                 fresh->sync.pairs.size(), np->token_source);
                }
                wait_signal();
                return;
            }
            begin_stop(signo == SIGTERM ? "SIGTERM" : "SIGINT");
        });
    };
    wait_signal();

    if (auto interval = watchdog_ping_interval()) {
        std::function<void()> ping = [&, interval = *interval] {
            notify_watchdog();
            watchdog.expires_after(interval);
            watchdog.async_wait([&](boost::system::error_code ec) {
                if (!ec) ping();
            });
        };
        ping();
    }

    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
            if (once) {
                const bool all_ok = co_await engine.run_once();
                if (!all_ok && !stopping) exit_code = exit_sync_failed;
            } else {
                co_await engine.run();
            }
        },
        [&](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::critical("the sync loop failed: {}", ex.what());
                }
                exit_code = exit_sync_failed;
            }
            signals.cancel();
            watchdog.cancel();
            stop_deadline.cancel();
            if (ops_endpoint) ops_endpoint->stop();
        });
    notify_ready(once ? "one pass over every pair" : "polling");
    ioc.run();

    const auto& st = engine.stats();
    spdlog::info("done: {} requests, {} retries, {} pages, {} incidents ({} new, {} changed, {} unchanged), {} drift "
                 "corrections",
                 st.requests, st.retries, st.pages, st.incidents_seen, st.incidents_new, st.incidents_changed,
                 st.incidents_unchanged, st.drift_corrections);
    return exit_code;
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
    case command::once:
        return sync(args, true);
    case command::run:
        return sync(args, false);
    }
    return exit_usage;
}

}  // namespace isync::app
