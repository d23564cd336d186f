#pragma once
// The `sync.concurrency` slots: how many pairs poll at once. A pair waits for
// a slot in a first-come queue; a slot given back goes straight to the first
// pair waiting. Unlike a channel, a waiting pair can be asked to leave the
// queue: when another daemon sharing the database holds its lease, it should
// not wait minutes for a slot only to be refused, nor sit there unseen when
// that daemon dies (the engine then claims it at once, without a slot).
// Event-loop thread only.

#include "config/config.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstddef>
#include <list>
#include <vector>

namespace isync::sync {

class slot_pool {
public:
    slot_pool(boost::asio::any_io_executor executor, std::size_t slots);

    enum class wait_result {
        taken,      // the caller holds a slot: give_back() it when done
        left,       // leave() asked the caller to go; it holds no slot
        cancelled,  // the coroutine was cancelled; it holds no slot
    };
    // Takes a slot, waiting in line while every slot is taken.
    boost::asio::awaitable<wait_result> take(config::pair pair);
    // Frees a slot: to the first pair waiting, if any.
    void give_back();
    // Asks `pair`'s waiting poll to leave the queue; false when none waits.
    bool leave(const config::pair& pair);

    // Pairs waiting for a slot, first in line first.
    std::vector<config::pair> waiting() const;
    std::size_t free_slots() const { return free_; }

private:
    enum class state { waiting, granted, asked_to_leave };
    struct waiter {
        config::pair pair;
        boost::asio::steady_timer wake;  // cancelled to wake the waiter
        state now = state::waiting;
    };

    boost::asio::any_io_executor executor_;
    std::size_t free_;
    std::list<waiter*> queue_;
};

}  // namespace isync::sync
