#include "sync/http_page_source.hpp"

#include "api/outcome.hpp"
#include "api/rate_limit.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace isync::sync {
namespace net = boost::asio;
namespace {
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// The longest wait for a stated rate-limit window to reset. Not retry.max_delay:
// windows are commonly a minute or an hour, and sending before the reset only
// earns 429s. The cap guards against a reset stated days ahead (or misread).
constexpr std::chrono::milliseconds max_budget_wait = std::chrono::minutes(15);
}  // namespace

// A request waiting for a free place. It leaves the queue however its
// coroutine ends, even when the frame is destroyed without resuming (a stop
// that hit its deadline), so release() never wakes a waiter that is gone.
struct http_page_source::waiter {
    waiter(net::any_io_executor executor, std::list<waiter*>& queue)
        : timer(executor, net::steady_timer::time_point::max()), queue_(queue), at_(queue.insert(queue.end(), this)) {}
    ~waiter() {
        if (!woken) queue_.erase(at_);
    }
    waiter(const waiter&) = delete;
    waiter& operator=(const waiter&) = delete;

    net::steady_timer timer;
    bool woken = false;

private:
    std::list<waiter*>& queue_;
    std::list<waiter*>::iterator at_;
};

http_page_source::http_page_source(net::any_io_executor executor, net::ssl::context& tls,
                                   http::connection_options connection, config::secret token,
                                   concurrency_settings limits, std::chrono::milliseconds max_pause,
                                   std::function<std::int64_t()> now_ms)
    : executor_(std::move(executor)),
      tls_(tls),
      options_(std::move(connection)),
      token_(std::move(token)),
      controller_(limits),
      max_pause_(max_pause),
      now_ms_(std::move(now_ms)) {}

http_page_source::~http_page_source() { *alive_ = false; }

source_stats http_page_source::stats() const {
    source_stats s;
    s.limit = controller_.limit();
    s.in_flight = in_flight_;
    s.peak_in_flight = peak_in_flight_;
    s.limit_decreases = controller_.decreases();
    s.pauses = pauses_;
    s.budget_waits = budget_waits_;
    s.connects = connects_;
    for (const auto& c : idle_) s.connects += c->stats().connects;
    s.wire_body_bytes = wire_bytes_;
    s.decoded_body_bytes = decoded_bytes_;
    s.average_rtt = controller_.average_rtt();
    return s;
}

// Waits out a pause (429 Retry-After, or a spent budget until its reset) and
// then for a free place under the limit. errc::cancelled when the waiting
// coroutine is cancelled.
net::awaitable<result<void>> http_page_source::acquire() {
    for (;;) {
        const auto now = std::chrono::steady_clock::now();
        if (budget_ && now >= budget_->reset) budget_.reset();  // a new window: unknown until told
        if (budget_ && budget_->remaining <= 0 && budget_->reset > pause_until_) {
            const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(budget_->reset - now);
            pause_until_ = budget_->reset;
            ++budget_waits_;
            spdlog::debug("the API's rate-limit budget is spent: every request waits {} ms for its reset",
                          wait.count());
        }
        if (now < pause_until_) {
            net::steady_timer pause(executor_, pause_until_);
            auto [ec] = co_await pause.async_wait(use_tuple);
            if (ec) co_return make_error(errc::cancelled, "cancelled while the API's rate limit was waited out");
            continue;
        }
        if (in_flight_ < controller_.limit()) {
            ++in_flight_;
            if (budget_) --budget_->remaining;
            peak_in_flight_ = std::max(peak_in_flight_, in_flight_);
            co_return result<void>{};
        }
        waiter w(executor_, waiters_);
        co_await w.timer.async_wait(use_tuple);
        if (!w.woken) co_return make_error(errc::cancelled, "cancelled while waiting for a free connection");
    }
}

void http_page_source::wake_waiters() {
    // Wake as many as may go now; each re-checks the limit and the pause.
    int free = controller_.limit() - in_flight_;
    while (free-- > 0 && !waiters_.empty()) {
        waiter* w = waiters_.front();
        waiters_.pop_front();
        w->woken = true;
        w->timer.cancel();
    }
}

void http_page_source::release() {
    --in_flight_;
    wake_waiters();
}

void http_page_source::release_when_server_done(std::chrono::steady_clock::time_point sent) {
    const auto rtt = controller_.average_rtt();
    const auto due = std::min(sent + rtt + rtt / 4, sent + std::chrono::seconds(2));
    if (due <= std::chrono::steady_clock::now()) return release();
    auto timer = std::make_shared<net::steady_timer>(executor_, due);
    std::erase_if(holds_, [](const auto& h) { return h.expired(); });
    holds_.push_back(timer);
    timer->async_wait([this, timer, alive = alive_](boost::system::error_code) {
        if (*alive) release();
    });
}

void http_page_source::forget_given_up_requests() {
    // Cancelled, each timer's handler runs at once and frees its place.
    for (const auto& h : holds_)
        if (auto timer = h.lock()) timer->cancel();
    holds_.clear();
}

std::unique_ptr<http::connection> http_page_source::take_connection() {
    if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
    }
    return std::make_unique<http::connection>(executor_, tls_, options_);
}

net::awaitable<result<http::response>> http_page_source::get(std::string target) {
    auto slot = co_await acquire();
    if (!slot) co_return slot.error();
    // Released however this coroutine ends (a cancelled frame included); a
    // request given up while the server has it, once the server is done.
    struct slot_release {
        http_page_source* self;
        std::optional<std::chrono::steady_clock::time_point> abandoned_since_sent{};
        ~slot_release() {
            if (abandoned_since_sent)
                self->release_when_server_done(*abandoned_since_sent);
            else
                self->release();
        }
    } release_guard{this};

    auto conn = take_connection();
    const auto before = conn->stats();
    const int at_send = in_flight_;
    const auto sent = std::chrono::steady_clock::now();
    // Until the exchange ends, a destroyed frame means the request was given up.
    release_guard.abandoned_since_sent = sent;
    auto res = co_await conn->get(std::move(target), token_);
    release_guard.abandoned_since_sent.reset();
    if (!res && res.error().code == errc::cancelled) release_guard.abandoned_since_sent = sent;
    const auto now = std::chrono::steady_clock::now();
    const auto rtt = std::chrono::duration_cast<std::chrono::milliseconds>(now - sent);
    wire_bytes_ += conn->stats().wire_body_bytes - before.wire_body_bytes;
    decoded_bytes_ += conn->stats().decoded_body_bytes - before.decoded_body_bytes;

    const int limit_before = controller_.limit();
    // Each change of the limit, at debug level: how it learns the API.
    // Nothing is formatted unless the limit moved (this runs for every answer).
    const auto log_change = [&](std::string_view why) {
        if (controller_.limit() == limit_before) return;
        spdlog::debug("requests in flight: limit {} -> {} ({}; round trip {} ms, average {} ms)", limit_before,
                      controller_.limit(), why, rtt.count(), controller_.average_rtt().count());
    };
    if (!res) {
        if (res.error().code == errc::timeout || res.error().code == errc::transport) {
            controller_.on_response(response_signal::timeout, rtt, at_send, now);
            log_change(res.error().code == errc::timeout ? "timeout" : "connection failed");
        }
        connects_ += conn->stats().connects;  // dropped: a failed connection is not reused
        co_return res;
    }
    note_budget(*res, now, in_flight_ - 1);
    const bool backpressure = res->status == 429 || res->status == 503;
    controller_.on_response(backpressure ? response_signal::backpressure : response_signal::ok, rtt, at_send, now);
    log_change(res->status == 429 ? "HTTP 429" : res->status == 503 ? "HTTP 503" : "answers in time at the limit");
    if (res->status == 429) {
        // Everyone waits: the limit is the account's, so the next request of
        // another pair would only be refused too.
        auto wait = api::parse_retry_after(res->retry_after, api::server_now_ms(res->date, now_ms_()));
        const auto pause = std::min(wait.value_or(std::chrono::milliseconds(1000)), max_pause_);
        controller_.on_pause(pause);
        if (now + pause > pause_until_) {
            if (now >= pause_until_) ++pauses_;  // a new pause, not one made longer
            pause_until_ = now + pause;
            spdlog::debug("HTTP 429: every request to the API waits {} ms; in flight now limited to {}", pause.count(),
                          controller_.limit());
        }
    }
    idle_.push_back(std::move(conn));
    wake_waiters();  // the limit may have grown
    co_return res;
}

void http_page_source::note_budget(const http::response& res, std::chrono::steady_clock::time_point now, int others) {
    if (res.rate_limit_remaining.empty() || res.rate_limit_reset.empty()) return;  // most APIs: no Date to parse
    const auto stated =
        api::parse_rate_limit(res.rate_limit_remaining, res.rate_limit_reset, api::server_now_ms(res.date, now_ms_()));
    if (!stated) return;
    // The requests in flight beside it are taken as spent already (they may
    // have reached the server after it answered). Answers arrive out of
    // order, so within one window the lowest count wins; a new window's
    // first answer replaces the old one's.
    const std::int64_t remaining = stated->remaining - others;
    if (budget_ && budget_->window == res.rate_limit_reset) {
        budget_->remaining = std::min(budget_->remaining, remaining);
        return;
    }
    budget_ = budget{remaining, now + std::min(stated->until_reset, max_budget_wait), res.rate_limit_reset};
}

net::awaitable<void> http_page_source::close_idle() {
    auto idle = std::move(idle_);
    idle_.clear();
    for (auto& c : idle) {
        connects_ += c->stats().connects;
        co_await c->shutdown();
    }
}

}  // namespace isync::sync
