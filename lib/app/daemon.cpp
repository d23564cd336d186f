#include "app/daemon.hpp"

#include "app/systemd_notify.hpp"
#include "log/logging.hpp"
#include "ops/health.hpp"
#include "ops/metrics_text.hpp"
#include "ops/ops_server.hpp"
#include "ops/progress_file.hpp"
#include "store/sync_store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <filesystem>

namespace isync::app {
namespace net = boost::asio;
namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::int64_t wall_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// nullopt without a file (PostgreSQL: database_path is empty).
std::optional<std::uint64_t> file_size(const std::string& path) {
    if (path.empty() || path.starts_with("-")) return std::nullopt;
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return std::nullopt;
    return size;
}

// The engine's facts in the shape the health rule takes (ops/health.hpp).
std::vector<ops::pair_facts> engine_facts(const sync::engine& engine) {
    std::vector<ops::pair_facts> out;
    for (const auto& [pair, h] : engine.health())
        out.push_back(
            {pair, true, h.last_success_ms, h.last_error_ms, h.watermark_ms, h.auth_failing, h.poll_started_ms});
    return out;
}

// /metrics, /healthz and /readyz, from the engine's counters and the files.
ops::http_reply answer_ops_request(const sync::engine& engine, const std::string& db_path, std::string_view target) {
    const std::string_view path = target.substr(0, target.find('?'));
    const std::int64_t now = wall_now_ms();
    const auto health = engine.health();
    const auto& sync = engine.settings().sync;
    if (path == "/metrics") {
        const auto verdict = ops::judge_health(engine_facts(engine), now, {sync.interval, sync.settle, sync.discover});
        const ops::metrics_input in{engine.stats(),
                                    health,
                                    now,
                                    file_size(db_path),
                                    file_size(db_path + "-wal"),
                                    engine.progress(),
                                    engine.source(),
                                    &verdict,
                                    engine.shares_work() ? &engine.leased_elsewhere() : nullptr};
        return {200, "text/plain; version=0.0.4; charset=utf-8", ops::render_metrics(in)};
    }
    // Answering at all proves the event loop turns.
    if (path == "/healthz") return {200, "application/json", "{\"status\":\"ok\"}\n"};
    if (path == "/readyz") {
        auto verdict = ops::judge_health(engine_facts(engine), now, {sync.interval, sync.settle, sync.discover});
        // Discovery alone, and it never answered: nothing is polled, which is
        // not "every pair healthy".
        if (sync.discover && !engine.applications() && health.empty()) {
            verdict.healthy = false;
            verdict.summary = "not ready: pair discovery has not succeeded yet, so there is nothing to poll";
        }
        const auto r = ops::render_readiness(verdict);
        return {r.ready ? 200u : 503u, "application/json", r.reason + "\n"};
    }
    return {404, "text/plain; charset=utf-8", "not found: try /metrics, /healthz or /readyz\n"};
}

// Every co_spawn gets a handler that says what escaped (STYLE.md).
auto log_escape(const char* what) {
    return [what](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const boost::system::system_error& ex) {
            if (ex.code() != net::error::operation_aborted) spdlog::error("{} failed: {}", what, ex.what());
        } catch (const std::exception& ex) {
            spdlog::error("{} failed: {}", what, ex.what());
        }
    };
}

}  // namespace

daemon::daemon(daemon_options options, net::ssl::context& tls, store::sync_store& store, sync::engine_settings settings,
               config::secret token, reload_function reload)
    : options_(std::move(options)),
      reload_(std::move(reload)),
      engine_(std::make_unique<sync::engine>(ioc_.get_executor(), tls, store, std::move(settings), std::move(token),
                                             sync::system_clock_source())),
      signals_(ioc_, SIGINT, SIGTERM, SIGHUP),
      watchdog_timer_(ioc_),
      progress_timer_(ioc_) {
    engine_->on_pair_done([this](const config::pair& pair, sync::pair_status s) {
        std::size_t ok = 0;
        for (const auto& [_, st] : engine_->last_status()) ok += st == sync::pair_status::ok;
        notify_status(fmt::format("{} pair(s) ok of {}; last: {}/{} {}", ok, engine_->last_status().size(), pair.app_id,
                                  pair.tld, s == sync::pair_status::ok ? "ok" : "failed"));
    });
    // Only `run` tries again: `once` must not promise a next interval.
    if (!options_.once)
        engine_->set_retry_hint(
            "; the pair is retried next interval (after rotating the token, `systemctl reload incident-syncd` or "
            "SIGHUP "
            "picks it up)");
    // `status` must see a poll the moment /readyz does (the same health rule).
    engine_->on_polls_changed([this] { write_progress_file(); });
    if (options_.range) engine_->set_range(*options_.range);
}

daemon::~daemon() {
    if (has_progress_file()) ops::remove_progress_file(options_.database_path);
}

int daemon::run() {
    // The metrics endpoint belongs to `run`; a one-shot `once` has nothing to be scraped for.
    if (!options_.once && options_.metrics_listen) {
        const std::string db_path = options_.database_path;
        auto started = ops::ops_server::start(
            ioc_.get_executor(), *options_.metrics_listen,
            [this, db_path](std::string_view target) { return answer_ops_request(*engine_, db_path, target); });
        if (!started) {
            spdlog::critical("{}", started.error().message);
            return exit_config;
        }
        ops_endpoint_ = std::move(*started);
        spdlog::info("metrics on http://{}:{}/metrics (also /healthz, /readyz)",
                     options_.metrics_listen->address.find(':') != std::string::npos
                         ? "[" + options_.metrics_listen->address + "]"
                         : options_.metrics_listen->address,
                     ops_endpoint_->port());
    }
    net::co_spawn(ioc_, handle_signals(), log_escape("the signal handler"));
    if (auto interval = watchdog_ping_interval())
        net::co_spawn(ioc_, ping_watchdog(*interval), log_escape("the watchdog ping"));
    net::co_spawn(ioc_, report_progress(), log_escape("progress reporting"));
    net::co_spawn(ioc_, main_task(), [this](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::critical("the sync loop failed: {}", ex.what());
            }
            exit_code_ = exit_sync_failed;
        }
        finish();
    });
    notify_ready(options_.once ? "one pass over every pair" : "polling");
    ioc_.run();

    const auto& st = engine_->stats();
    const auto src = engine_->source();
    spdlog::info(
        "done: {} requests, {} retries, {} pages, {} incidents ({} new, {} changed, {} unchanged), {} drift "
        "corrections; {:.1f} MiB received ({:.1f} MiB decoded), at most {} request(s) in flight",
        st.requests, st.retries, st.pages, st.incidents_read, st.incidents_new, st.incidents_changed,
        st.incidents_read - std::min(st.incidents_read, st.incidents_new + st.incidents_changed), st.drift_corrections,
        static_cast<double>(src.wire_body_bytes) / (1 << 20), static_cast<double>(src.decoded_body_bytes) / (1 << 20),
        src.peak_in_flight);
    // The engine goes first (its writer joins, committing what it can); frames
    // still suspended after a stop deadline go with the io_context after it.
    engine_.reset();
    return exit_code_;
}

net::awaitable<void> daemon::main_task() {
    if (options_.once) {
        const bool all_ok = co_await engine_->run_once();
        if (!all_ok && !stopping_) exit_code_ = exit_sync_failed;
    } else {
        co_await engine_->run();
    }
    // The writer may still be busy with the last pages (or stuck behind
    // another process's lock while stopping: the stop's second phase
    // interrupts it). The loop ends once it is done, not before.
    co_await engine_->drain();
}

void daemon::finish() {
    finished_ = true;
    signals_.cancel();
    watchdog_timer_.cancel();
    progress_timer_.cancel();
    if (stop_timer_) stop_timer_->cancel();
    if (ops_endpoint_) ops_endpoint_->stop();
}

net::awaitable<void> daemon::handle_signals() {
    for (;;) {
        auto [ec, signo] = co_await signals_.async_wait(use_tuple);
        if (ec || finished_) co_return;
        if (signo != SIGHUP) {
            begin_stop(signo == SIGTERM ? "SIGTERM" : "SIGINT");
            co_return;
        }
        auto fresh = reload_();
        if (!fresh) {
            spdlog::error("SIGHUP: configuration not reloaded, keeping the running one: {}", fresh.error().message);
            continue;
        }
        const char* discovery = fresh->settings.sync.discover ? " and discovery, asked again now" : "";
        engine_->reconfigure(std::move(fresh->settings), std::move(fresh->token));
        if (options_.once)
            spdlog::info(
                "SIGHUP: configuration and token read ({} pair(s), token from {}); this `once` pass "
                "finishes with the settings it began with",
                fresh->pairs, fresh->token_source);
        else
            spdlog::info("SIGHUP: configuration and token reloaded ({} pair(s){}, token from {})", fresh->pairs,
                         discovery, fresh->token_source);
    }
}

void daemon::begin_stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    spdlog::info("{}: stopping; requests in flight are cancelled, pages already fetched are committed", why);
    notify_stopping();
    engine_->stop();
    watchdog_timer_.cancel();
    progress_timer_.cancel();
    if (ops_endpoint_) ops_endpoint_->stop();
    net::co_spawn(ioc_, stop_sequence(why), log_escape("the stop"));
}

net::awaitable<void> daemon::stop_sequence(std::string why) {
    stop_timer_ = std::make_unique<net::steady_timer>(ioc_);
    stop_timer_->expires_after(options_.interrupt_after);
    if (auto [ec] = co_await stop_timer_->async_wait(use_tuple); ec || finished_) co_return;
    spdlog::warn(
        "{}: polls still running after {} ms; interrupting the database writer (its open transaction rolls "
        "back; watermarks stay where they are)",
        why, options_.interrupt_after.count());
    engine_->interrupt_writes();
    stop_timer_->expires_after(options_.deadline - options_.interrupt_after);
    if (auto [ec] = co_await stop_timer_->async_wait(use_tuple); ec || finished_) co_return;
    spdlog::warn("{}: tasks did not finish within {} ms; stopping the event loop", why, options_.deadline.count());
    ioc_.stop();
}

net::awaitable<void> daemon::ping_watchdog(std::chrono::microseconds interval) {
    for (;;) {
        notify_watchdog();
        watchdog_timer_.expires_after(interval);
        if (auto [ec] = co_await watchdog_timer_.async_wait(use_tuple); ec || stopping_ || finished_) co_return;
    }
}

// Every few seconds: one line per pair that has been polling a while, and the
// progress file `status` reads.
net::awaitable<void> daemon::report_progress() {
    for (;;) {
        report_progress_once();
        progress_timer_.expires_after(options_.progress_every);
        if (auto [ec] = co_await progress_timer_.async_wait(use_tuple); ec || stopping_ || finished_) co_return;
    }
}

void daemon::report_progress_once() {
    const std::int64_t now = wall_now_ms();
    for (const auto& [pair, p] : engine_->progress()) {
        if (p.slice == 0 || now - p.poll_started_ms < options_.progress_every.count()) continue;
        const auto rate = ops::rate_of(p, now);
        const log::scoped_fields fields(
            {log::scoped_fields::text("pair", pair.app_id + "/" + pair.tld),
             log::scoped_fields::text("status", "polling"), log::scoped_fields::number("slice", p.slice),
             log::scoped_fields::number("slices", p.slices), log::scoped_fields::number("read", p.read),
             log::scoped_fields::number("expected", p.window_count)});
        spdlog::info("{}/{}: slice {} of {}, {} of {} incidents read, {:.0f}/s{}", pair.app_id, pair.tld, p.slice,
                     p.slices, p.read, p.window_count, rate.per_second,
                     rate.eta_seconds ? fmt::format(", ETA {}s", *rate.eta_seconds) : std::string());
    }
    write_progress_file();
}

void daemon::write_progress_file() {
    if (!has_progress_file() || finished_) return;
    ops::daemon_progress file{static_cast<long>(::getpid()), wall_now_ms(), engine_->progress(),
                              engine_->polled_pairs()};
    if (auto w = ops::write_progress_file(options_.database_path, file); !w)
        spdlog::debug("progress file not written: {}", w.error().message);
}

}  // namespace isync::app
