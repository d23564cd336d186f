#include "sync/http_page_source.hpp"

#include "api/outcome.hpp"
#include "api/rate_limit.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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

// One request's exchange with the server, run as its own coroutine so that a
// request given up still ends as the server ends it: its place is freed when
// the answer has come (the server held it until then), and its connection
// goes back to the pool instead of being closed under a pending answer.
struct http_page_source::exchange {
    explicit exchange(const net::any_io_executor& executor)
        : answered(executor, net::steady_timer::time_point::max()) {}

    net::steady_timer answered;  // cancelled once `answer` is set
    std::optional<result<http::response>> answer;
    bool given_up = false;          // the requester stopped waiting for it
    bool place_released = false;    // forget_given_up_requests freed its place already
    net::cancellation_signal stop;  // ends it early: nothing more will be asked, or the source is going
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

http_page_source::~http_page_source() {
    *alive_ = false;
    for (const auto& weak : exchanges_)
        if (auto ex = weak.lock()) ex->stop.emit(net::cancellation_type::terminal);
}

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

void http_page_source::forget_given_up_requests() {
    // Their places are freed now; each ends at once (its connection closed).
    for (const auto& weak : exchanges_) {
        auto ex = weak.lock();
        if (!ex || !ex->given_up || ex->answer || ex->place_released) continue;
        ex->place_released = true;
        release();
        ex->stop.emit(net::cancellation_type::terminal);
    }
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
    auto ex = std::make_shared<exchange>(executor_);
    std::erase_if(exchanges_, [](const auto& weak) { return weak.expired(); });
    exchanges_.push_back(ex);
    net::co_spawn(executor_, run_exchange(alive_, take_connection(), std::move(target), token_, ex),
                  net::bind_cancellation_slot(ex->stop.slot(), net::detached));
    // However this frame ends before the answer (cancelled, or destroyed
    // without resuming), the exchange goes on without it.
    struct give_up_guard {
        exchange& ex;
        ~give_up_guard() {
            if (!ex.answer) ex.given_up = true;
        }
    } guard{*ex};
    if (!ex->answer) (void)co_await ex->answered.async_wait(use_tuple);
    if (!ex->answer) co_return make_error(errc::cancelled, "cancelled while the request was in flight");
    co_return std::move(*ex->answer);
}

// `alive`, `token` and `ex` are the frame's own: the source may be gone when
// the exchange resumes (its destructor stops it), and then nothing of it is touched.
net::awaitable<void> http_page_source::run_exchange(std::shared_ptr<bool> alive, std::unique_ptr<http::connection> conn,
                                                    std::string target, config::secret token,
                                                    std::shared_ptr<exchange> ex) {
    // However the exchange ends (an exception included), its place is freed
    // and the requester, if still there, is woken.
    struct finisher {
        http_page_source* self;
        const std::shared_ptr<bool>& alive;
        exchange& ex;
        ~finisher() {
            if (!ex.answer) ex.answer = make_error(errc::cancelled, "the request was stopped");
            ex.answered.cancel();
            if (*alive && !ex.place_released) self->release();
        }
    } finish{this, alive, *ex};

    const auto before = conn->stats();
    const int at_send = in_flight_;
    const auto sent = std::chrono::steady_clock::now();
    auto res = co_await conn->get(std::move(target), std::move(token));
    if (!*alive) co_return;  // the source is gone: none of what follows is ours to touch
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
        ex->answer = std::move(res);
        co_return;
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
    ex->answer = std::move(res);
    // The finisher frees the place, which also wakes waiters (the limit may have grown).
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

}  // namespace isync::sync
