// The concurrency slots: first come, first served; a slot given back goes to
// the first waiter; a waiter asked to leave goes without a slot; a cancelled
// waiter takes none, even when a slot was handed to it as it was cancelled.
// No clocks: the io_context runs what is ready, then the test looks.

#include "sync/slot_pool.hpp"

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <optional>
#include <string>
#include <vector>

namespace net = boost::asio;
using isync::config::pair;
using isync::sync::slot_pool;

namespace {

pair p(int n) { return pair{"app" + std::to_string(n), "site.example"}; }

// Runs every handler that is ready (a waiter's timer never expires by
// itself, so io.run() would wait for it).
void settle(net::io_context& io) {
    while (io.poll() > 0) io.restart();
    io.restart();
}

struct recorded {
    std::optional<slot_pool::wait_result> result;
};

// Starts a coroutine that waits for a slot and records what it got.
void start_taking(net::io_context& io, slot_pool& pool, pair who, recorded& out, net::cancellation_slot cancel = {}) {
    auto take = [](slot_pool& pool, pair who, recorded& out) -> net::awaitable<void> {
        out.result = co_await pool.take(std::move(who));
    };
    net::co_spawn(io, take(pool, std::move(who), out), net::bind_cancellation_slot(cancel, net::detached));
}

TEST(SlotPool, GrantsFreeSlotsAtOnceThenQueuesFirstComeFirstServed) {
    net::io_context io;
    slot_pool pool(io.get_executor(), 2);
    recorded a, b, c, d;
    start_taking(io, pool, p(1), a);
    start_taking(io, pool, p(2), b);
    start_taking(io, pool, p(3), c);
    start_taking(io, pool, p(4), d);
    settle(io);
    EXPECT_EQ(a.result, slot_pool::wait_result::taken);
    EXPECT_EQ(b.result, slot_pool::wait_result::taken);
    EXPECT_FALSE(c.result.has_value());
    EXPECT_FALSE(d.result.has_value());
    EXPECT_EQ(pool.waiting(), (std::vector<pair>{p(3), p(4)}));
    EXPECT_EQ(pool.free_slots(), 0u);

    pool.give_back();  // to the first in line, not to a newcomer
    recorded e;
    start_taking(io, pool, p(5), e);
    settle(io);
    EXPECT_EQ(c.result, slot_pool::wait_result::taken);
    EXPECT_FALSE(d.result.has_value());
    EXPECT_FALSE(e.result.has_value());
    EXPECT_EQ(pool.waiting(), (std::vector<pair>{p(4), p(5)}));
}

TEST(SlotPool, AWaiterAskedToLeaveGoesWithoutASlot) {
    net::io_context io;
    slot_pool pool(io.get_executor(), 1);
    recorded a, b, c;
    start_taking(io, pool, p(1), a);
    start_taking(io, pool, p(2), b);
    start_taking(io, pool, p(3), c);
    settle(io);
    EXPECT_TRUE(pool.leave(p(2)));
    EXPECT_FALSE(pool.leave(p(2)));  // gone already
    EXPECT_FALSE(pool.leave(p(1)));  // polling, not waiting
    settle(io);
    EXPECT_EQ(b.result, slot_pool::wait_result::left);
    EXPECT_EQ(pool.waiting(), std::vector<pair>{p(3)});
    // The slot still goes to the next in line.
    pool.give_back();
    settle(io);
    EXPECT_EQ(c.result, slot_pool::wait_result::taken);
    EXPECT_EQ(pool.free_slots(), 0u);
}

TEST(SlotPool, ACancelledWaiterTakesNoSlotAndPassesOneHandedToItOn) {
    net::io_context io;
    slot_pool pool(io.get_executor(), 1);
    recorded a, b, c;
    net::cancellation_signal cancel_b;
    start_taking(io, pool, p(1), a);
    start_taking(io, pool, p(2), b, cancel_b.slot());
    start_taking(io, pool, p(3), c);
    settle(io);
    // b is granted the slot and cancelled before it runs again (both on the
    // loop, as the engine's stop would): the slot goes on to c rather than
    // being lost.
    net::post(io, [&] {
        pool.give_back();
        cancel_b.emit(net::cancellation_type::terminal);
    });
    settle(io);
    EXPECT_EQ(b.result, slot_pool::wait_result::cancelled);
    EXPECT_EQ(c.result, slot_pool::wait_result::taken);
    EXPECT_EQ(pool.free_slots(), 0u);
    EXPECT_TRUE(pool.waiting().empty());
    // A waiter cancelled while still in line leaves the line.
    recorded d;
    net::cancellation_signal cancel_d;
    start_taking(io, pool, p(4), d, cancel_d.slot());
    settle(io);
    EXPECT_EQ(pool.waiting(), std::vector<pair>{p(4)});
    net::post(io, [&] { cancel_d.emit(net::cancellation_type::terminal); });
    settle(io);
    EXPECT_EQ(d.result, slot_pool::wait_result::cancelled);
    EXPECT_TRUE(pool.waiting().empty());
    pool.give_back();
    EXPECT_EQ(pool.free_slots(), 1u);
}

}  // namespace
