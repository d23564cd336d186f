#pragma once
// `once` and `run` after start-up: the event loop, the engine, the ops
// endpoint, signals, the watchdog, progress reporting and a bounded stop.
//
// Lifetimes: the io_context is declared before the engine, so the engine is
// destroyed first. A stop that hits its deadline leaves coroutine frames
// suspended in the loop; they are destroyed with the io_context afterwards,
// and their guards see that the engine is gone (engine::alive_) instead of
// touching it. Everything a frame refers to beyond the engine (the TLS
// context, the store) is owned by the caller and outlives this object.
//
// A stop (SIGTERM/SIGINT) goes in three phases, each bounded:
//   1. at once: cancel every poll; pages already fetched are still written and
//      committed; a slice whose last page was not written keeps its watermark;
//   2. after `interrupt_after`: end the writer's SQLite waits (another process
//      holding the lock, a slow disk); the open transaction rolls back;
//   3. after `deadline`: stop the loop, whatever is still suspended.
// (Asio coroutines only see terminal cancellation unless they ask for more,
// so the two-phase total/terminal cancellation of Beast's example becomes
// "cancel, then interrupt the database" here.)

#include "app/arguments.hpp"
#include "config/config.hpp"
#include "config/secret.hpp"
#include "sync/engine.hpp"
#include "util/error.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace isync::store {
class sync_store;
}
namespace isync::ops {
class ops_server;
}

namespace isync::app {

struct daemon_options {
    bool once = false;
    // The SQLite file; empty with PostgreSQL (no progress file, no file sizes).
    std::string database_path;
    std::optional<config::listen_address> metrics_listen;  // nullopt (or `once`): no ops endpoint
    std::chrono::milliseconds interrupt_after{4000};
    std::chrono::milliseconds deadline{8000};
    std::chrono::milliseconds progress_every{5000};
    std::optional<sync::slice> range;  // `resync`: re-read this range (with `once`), move no watermark
};

// A reloaded configuration (SIGHUP): the engine's settings and token, or why not.
struct reloaded {
    sync::engine_settings settings;
    config::secret token;
    std::string token_source;
    std::size_t pairs = 0;
};
using reload_function = std::function<result<reloaded>()>;

class daemon {
public:
    daemon(daemon_options options, boost::asio::ssl::context& tls, store::sync_store& store,
           sync::engine_settings settings, config::secret token, reload_function reload);
    ~daemon();

    // Runs until `once`'s pass ends or a stop completes. Returns the exit code.
    int run();

private:
    boost::asio::awaitable<void> main_task();
    boost::asio::awaitable<void> handle_signals();
    boost::asio::awaitable<void> stop_sequence(std::string why);
    boost::asio::awaitable<void> ping_watchdog(std::chrono::microseconds interval);
    boost::asio::awaitable<void> report_progress();
    void begin_stop(const char* why);
    void report_progress_once();
    void write_progress_file();
    // `status` reads a progress file beside a SQLite file; none for :memory: or PostgreSQL.
    bool has_progress_file() const { return !options_.database_path.empty() && options_.database_path != ":memory:"; }
    void finish();

    daemon_options options_;
    reload_function reload_;
    int exit_code_ = 0;
    bool stopping_ = false;
    bool finished_ = false;
    // Declared in this order on purpose: see the header comment.
    boost::asio::io_context ioc_{1};
    std::unique_ptr<sync::engine> engine_;
    std::unique_ptr<ops::ops_server> ops_endpoint_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer watchdog_timer_;
    boost::asio::steady_timer progress_timer_;
    std::unique_ptr<boost::asio::steady_timer> stop_timer_;  // the stop sequence's, while it runs
};

}  // namespace isync::app
