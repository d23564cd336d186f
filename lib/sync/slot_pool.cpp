#include "sync/slot_pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace isync::sync {

namespace net = boost::asio;

slot_pool::slot_pool(net::any_io_executor executor, std::size_t slots) : executor_(std::move(executor)), free_(slots) {}

net::awaitable<slot_pool::wait_result> slot_pool::take(config::pair pair) {
    if (free_ > 0 && queue_.empty()) {
        --free_;
        co_return wait_result::taken;
    }
    waiter w{std::move(pair), net::steady_timer(executor_, net::steady_timer::time_point::max())};
    const auto place = queue_.insert(queue_.end(), &w);
    // Woken by give_back() or leave() (each takes the waiter out of the
    // queue first), or by the coroutine's cancellation: the state tells.
    co_await w.wake.async_wait(net::as_tuple(net::use_awaitable));
    switch (w.now) {
        case state::waiting:
            queue_.erase(place);
            co_return wait_result::cancelled;
        case state::asked_to_leave:
            co_return wait_result::left;
        case state::granted:
            break;
    }
    // Granted as a stop cancelled the wait: the slot goes on to the next.
    if ((co_await net::this_coro::cancellation_state).cancelled() != net::cancellation_type::none) {
        give_back();
        co_return wait_result::cancelled;
    }
    co_return wait_result::taken;
}

void slot_pool::give_back() {
    if (queue_.empty()) {
        ++free_;
        return;
    }
    waiter* next = queue_.front();
    queue_.pop_front();
    next->now = state::granted;
    next->wake.cancel();
}

bool slot_pool::leave(const config::pair& pair) {
    const auto it = std::find_if(queue_.begin(), queue_.end(), [&](const waiter* w) { return w->pair == pair; });
    if (it == queue_.end()) return false;
    waiter* w = *it;
    queue_.erase(it);
    w->now = state::asked_to_leave;
    w->wake.cancel();
    return true;
}

std::vector<config::pair> slot_pool::waiting() const {
    std::vector<config::pair> out;
    out.reserve(queue_.size());
    for (const waiter* w : queue_) out.push_back(w->pair);
    return out;
}

}  // namespace isync::sync
