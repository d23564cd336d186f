#pragma once
// The real page_source: requests to the API over a small pool of keep-alive
// HTTPS connections shared by every pair, with one limit on requests in
// flight (adaptive: sync/concurrency_limit.hpp) and one pause for everyone
// when the API answers 429 with Retry-After: a rate limit is the account's,
// not one request's. Where the API states its budget (X-RateLimit-Remaining
// and -Reset), the source spends it and then waits for the reset, so the
// 429 does not come at all.

#include "config/secret.hpp"
#include "http/connection.hpp"
#include "sync/concurrency_limit.hpp"
#include "sync/page_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace isync::sync {

class http_page_source final : public page_source {
public:
    // `tls` must outlive the source. `now_ms` is the wall clock, for
    // Retry-After dates; `max_pause` clamps a Retry-After (retry.max_delay).
    http_page_source(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls,
                     http::connection_options connection, config::secret token, concurrency_settings limits,
                     std::chrono::milliseconds max_pause, std::function<std::int64_t()> now_ms);
    ~http_page_source() override;

    boost::asio::awaitable<result<http::response>> get(std::string target) override;

    source_stats stats() const override;
    void forget_given_up_requests() override;

private:
    struct waiter;
    struct exchange;
    boost::asio::awaitable<result<void>> acquire();
    void release();
    // The request's exchange, on its own: a request given up before its
    // answer (the walk no longer wanted the page, or a stop) still holds a
    // place at the server until the server has answered it, so its place
    // here is freed only then (or by forget_given_up_requests), and the next
    // request does not find the server's limit full and get a 429.
    boost::asio::awaitable<void> run_exchange(std::shared_ptr<bool> alive, std::unique_ptr<http::connection> conn,
                                              std::string target, config::secret token, std::shared_ptr<exchange> ex);
    void wake_waiters();
    std::unique_ptr<http::connection> take_connection();

    boost::asio::any_io_executor executor_;
    boost::asio::ssl::context& tls_;
    http::connection_options options_;
    config::secret token_;
    concurrency_controller controller_;
    std::chrono::milliseconds max_pause_;
    std::function<std::int64_t()> now_ms_;
    std::vector<std::unique_ptr<http::connection>> idle_;
    std::list<waiter*> waiters_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed, for exchanges still running
    std::vector<std::weak_ptr<exchange>> exchanges_;              // those running
    std::chrono::steady_clock::time_point pause_until_{};
    // The API's stated budget: requests left before `reset` (steady clock),
    // less those sent since it was stated. Unknown until a response says.
    struct budget {
        std::int64_t remaining = 0;
        std::chrono::steady_clock::time_point reset;
        std::string window;  // the X-RateLimit-Reset value as sent: which window it counts
    };
    std::optional<budget> budget_;
    // Reads a response's rate-limit headers into budget_ (`others` requests
    // were in flight beside it, and may not be counted in what it says yet).
    void note_budget(const http::response& res, std::chrono::steady_clock::time_point now, int others);
    int in_flight_ = 0;
    int peak_in_flight_ = 0;
    std::uint64_t pauses_ = 0;
    std::uint64_t budget_waits_ = 0;
    std::uint64_t connects_ = 0;  // of connections already closed
    std::uint64_t wire_bytes_ = 0;
    std::uint64_t decoded_bytes_ = 0;
};

}  // namespace isync::sync
