#pragma once
// The single writer: while the engine runs, one thread owns the database
// connection. The event loop fetches and parses; pages are handed here and
// written into one open transaction, which commits when no page is waiting,
// or once it holds `max_batch_incidents` written incidents or is
// `max_batch_age` old. So the next pages are fetched while this one is
// written, a backfill commits big transactions (each random index page is
// written to the log once per commit, not once per page of 100), and a quiet
// poll still commits at once.
//
// Order and atomicity: jobs run in the order submitted. A ledger is one
// pair's poll; when a transaction fails, every ledger with a page in it is
// failed and its later pages are refused, so a slice's watermark can never
// commit without every page of that slice.

#include "model/incident.hpp"
#include "store/sync_store.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace isync::sync {

// A value produced on another thread and delivered on the event loop; awaited once.
template <class T>
class one_shot {
public:
    explicit one_shot(boost::asio::any_io_executor loop) : channel_(loop, 1) {}

    // Loop thread only (the writer posts the call there).
    void set(T value) {
        value_ = std::move(value);
        channel_.try_send(boost::system::error_code{});
    }

    // Loop thread: whether the value has come (wait() would not suspend).
    bool ready() const { return value_.has_value(); }

    // The value, or nullopt when the waiting coroutine was cancelled first.
    boost::asio::awaitable<std::optional<T>> wait() {
        if (!value_) {
            auto [ec] = co_await channel_.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec || !value_) co_return std::nullopt;
        }
        co_return std::move(value_);
    }

private:
    std::optional<T> value_;
    boost::asio::experimental::channel<void(boost::system::error_code)> channel_;
};

// When the writer commits a transaction although pages are still waiting.
struct writer_limits {
    // Written (new or changed) incidents per transaction. Past about 200k
    // incidents the random leaves of the `id` index no longer fit SQLite's
    // cache, and the log grows by about a page per incident whatever the
    // batch; fewer, larger transactions checkpoint it less often: at 1M,
    // 25,000 made a fresh backfill about 15-25% faster than 5,000 did (no
    // change at 100k), for a log that grows to about 0.5 GB before its
    // checkpoint.
    std::int64_t max_batch_incidents = 25000;
    std::chrono::milliseconds max_batch_age{1000};
    // How long the queue may stay empty before the open transaction commits.
    // A backfill hands over a page every few milliseconds; committing at every
    // momentary gap made transactions of a few hundred incidents, and each
    // commit rewrites the hot pages of the random indexes.
    std::chrono::milliseconds idle_commit{50};
    // Pages handed over by submit_when_room() and not yet written, across
    // every pair: more only holds memory (at 1M incidents the writer is the
    // slower side, and each pair kept a batch of pages queued: 45 MiB of
    // peak RSS), 8 pages keep the writer busy while the loop fetches.
    std::size_t max_queued_pages = 8;
};

class store_writer {
public:
    // One pair's poll, as the writer sees it. Writer thread only.
    struct ledger {
        std::optional<error> failure;  // set when a transaction holding its pages failed
        // The pair whose pages it writes: each transaction fences it first
        // (sync_store::fence), so that a daemon that lost the pair's lease
        // writes nothing of it. nullopt: no fence (tests of the writer alone).
        std::optional<config::pair> pair;
    };

    using write_ticket = one_shot<result<store::upsert_counts>>;

    store_writer(boost::asio::any_io_executor loop, store::sync_store& store, writer_limits l = {});
    ~store_writer();  // commits what was written, then joins the thread
    store_writer(const store_writer&) = delete;
    store_writer& operator=(const store_writer&) = delete;

    std::shared_ptr<ledger> open_ledger(std::optional<config::pair> pair = std::nullopt) {
        auto l = std::make_shared<ledger>();
        l->pair = std::move(pair);
        return l;
    }

    // Hands a page over; the ticket completes once the page is written into
    // the open transaction (not yet committed), or refused with the error.
    // With `finish`, the page also moves the slice's watermark.
    std::shared_ptr<write_ticket> submit(std::shared_ptr<ledger> owner, model::page page, std::int64_t now_ms,
                                         std::optional<store::slice_report> finish);
    // The same, once fewer than `max_queued_pages` pages handed over this way
    // wait for the writer (the engine's way in: it bounds memory). If the
    // caller is cancelled while waiting, the ticket says errc::cancelled.
    // Loop thread: pages handed over by submit_when_room() and not yet
    // written, and the most that may be.
    std::size_t queued_pages() const { return room_->taken; }
    std::size_t max_queued_pages() const { return limits_.max_queued_pages; }
    boost::asio::awaitable<std::shared_ptr<write_ticket>> submit_when_room(std::shared_ptr<ledger> owner,
                                                                           model::page page, std::int64_t now_ms,
                                                                           std::optional<store::slice_report> finish);

    // Commits the open transaction; completes with the ledger's failure if
    // any of its pages was lost, else success: all of them are durable.
    boost::asio::awaitable<result<void>> flush(std::shared_ptr<ledger> owner);

    // From the loop thread while stopping: ends the writer's SQLite waits now
    // (store::interrupt_waits); the open transaction rolls back and every
    // job still queued fails as errc::cancelled, so the thread can be joined
    // without waiting out database.busy_timeout.
    void interrupt();

    // Runs `task(store)` on the writer thread between transactions and
    // returns its result (a result<...>); errc::cancelled if the awaiting
    // coroutine is cancelled first (the task still runs).
    // Not a coroutine itself: GCC 12 destroys a temporary lambda bound to a
    // coroutine parameter twice.
    template <class F>
    auto call(F task) -> boost::asio::awaitable<std::invoke_result_t<F, store::sync_store&>> {
        using R = std::invoke_result_t<F, store::sync_store&>;
        auto ticket = std::make_shared<one_shot<R>>(loop_);
        enqueue(true, [this, task = std::move(task), ticket, work = tracked_loop()]() mutable {
            deliver_on(work, ticket, task(store_));
        });
        return await_result(std::move(ticket));
    }

    // Runs `task(store)` on the writer thread between transactions; nobody waits.
    void post(std::function<void(store::sync_store&)> task);

private:
    struct job {
        bool barrier = false;  // commit the open transaction before running
        std::function<void()> run;
    };

    // From the writer thread: hands `value` to `ticket` on the event loop.
    template <class T>
    static void deliver_on(const boost::asio::any_io_executor& work, std::shared_ptr<one_shot<T>> ticket, T value) {
        boost::asio::post(
            work, [ticket = std::move(ticket), value = std::move(value)]() mutable { ticket->set(std::move(value)); });
    }

    template <class R>
    static boost::asio::awaitable<R> await_result(std::shared_ptr<one_shot<R>> ticket) {
        auto value = co_await ticket->wait();
        if (!value) co_return make_error(errc::cancelled, "cancelled while waiting for the database writer");
        co_return std::move(*value);
    }

    // Places among the queued pages: a buffered message is a place taken.
    struct room {
        room(const boost::asio::any_io_executor& loop, std::size_t places) : places(loop, places) {}
        boost::asio::experimental::channel<void(boost::system::error_code)> places;
        std::size_t taken = 0;  // loop thread only
    };

    std::shared_ptr<write_ticket> enqueue_page(std::shared_ptr<ledger> owner, model::page page, std::int64_t now_ms,
                                               std::optional<store::slice_report> finish, bool holds_room);
    void enqueue(bool barrier, std::function<void()> run);
    void thread_main();
    void write(const std::shared_ptr<ledger>& owner, const model::page& page, std::int64_t now_ms,
               const std::optional<store::slice_report>& finish, const std::shared_ptr<write_ticket>& ticket,
               const boost::asio::any_io_executor& work);
    result<store::upsert_counts> write_typed(const model::page& page, std::int64_t now_ms,
                                             const std::optional<store::slice_report>& finish);
    // Looks each incident up first; types and writes only those that changed.
    result<store::upsert_counts> write_untyped(const model::page& page, std::int64_t now_ms,
                                               std::optional<store::slice_report> finish);
    void commit_batch();
    void fail_batch(const error& e);
    boost::asio::any_io_executor tracked_loop() const;

    boost::asio::any_io_executor loop_;
    store::sync_store& store_;
    writer_limits limits_;
    // Shared: a place is given back from a handler posted to the loop, which
    // may run after this writer is gone.
    std::shared_ptr<room> room_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<job> queue_;
    bool stopping_ = false;

    // Writer thread only: the open transaction.
    std::vector<std::shared_ptr<ledger>> batch_ledgers_;
    std::int64_t batch_incidents_ = 0;
    std::chrono::steady_clock::time_point batch_started_;
    // For the debug line at exit: how the thread spent its life.
    std::chrono::steady_clock::duration waited_{};
    std::int64_t commits_ = 0;

    std::thread thread_;  // last: starts once everything above exists
};

}  // namespace isync::sync
