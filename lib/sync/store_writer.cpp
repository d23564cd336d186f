#include "sync/store_writer.hpp"

#include "store/database.hpp"

#include "api/page_parser.hpp"

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

#include <pthread.h>

namespace isync::sync {
namespace net = boost::asio;

store_writer::store_writer(net::any_io_executor loop, store::sync_store& store, writer_limits l)
    : loop_(std::move(loop)),
      store_(store),
      limits_(l),
      room_(std::make_shared<room>(loop_, std::max<std::size_t>(1, l.max_queued_pages))),
      thread_([this] { thread_main(); }) {}

store_writer::~store_writer() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

net::any_io_executor store_writer::tracked_loop() const {
    // Keeps the event loop from running out of work while a job is queued.
    return net::prefer(loop_, net::execution::outstanding_work.tracked);
}

void store_writer::enqueue(bool barrier, std::function<void()> run) {
    {
        std::lock_guard lock(mutex_);
        queue_.push_back({barrier, std::move(run)});
    }
    wake_.notify_one();
}

std::shared_ptr<store_writer::write_ticket> store_writer::submit(std::shared_ptr<ledger> owner, model::page page,
                                                                 std::int64_t now_ms,
                                                                 std::optional<store::slice_report> finish) {
    return enqueue_page(std::move(owner), std::move(page), now_ms, std::move(finish), false);
}

net::awaitable<std::shared_ptr<store_writer::write_ticket>> store_writer::submit_when_room(
    std::shared_ptr<ledger> owner, model::page page, std::int64_t now_ms, std::optional<store::slice_report> finish) {
    // Taking a place is sending into the channel: it waits while all are taken.
    auto [ec] = co_await room_->places.async_send(boost::system::error_code{}, net::as_tuple(net::use_awaitable));
    if (ec) {
        auto refused = std::make_shared<write_ticket>(loop_);
        refused->set(make_error(errc::cancelled, "cancelled while waiting for room in the database writer's queue"));
        co_return refused;
    }
    ++room_->taken;
    co_return enqueue_page(std::move(owner), std::move(page), now_ms, std::move(finish), true);
}

std::shared_ptr<store_writer::write_ticket> store_writer::enqueue_page(std::shared_ptr<ledger> owner, model::page page,
                                                                       std::int64_t now_ms,
                                                                       std::optional<store::slice_report> finish,
                                                                       bool holds_room) {
    auto ticket = std::make_shared<write_ticket>(loop_);
    enqueue(false, [this, owner = std::move(owner), page = std::move(page), now_ms, finish = std::move(finish), ticket,
                    holds_room, room = room_, work = tracked_loop()]() mutable {
        write(owner, page, now_ms, finish, ticket, work);
        page = {};  // the memory goes before the place is given back
        if (holds_room)
            net::post(work, [room] {
                --room->taken;
                room->places.try_receive([](boost::system::error_code) {});
            });
    });
    return ticket;
}

net::awaitable<result<void>> store_writer::flush(std::shared_ptr<ledger> owner) {
    // The barrier commits everything written before; the ledger then knows
    // whether all of its pages made it.
    return call([owner](store::sync_store&) -> result<void> {
        if (owner->failure) return *owner->failure;
        return {};
    });
}

void store_writer::interrupt() { store_.interrupt_waits(); }

void store_writer::post(std::function<void(store::sync_store&)> task) {
    enqueue(true, [this, task = std::move(task)] { task(store_); });
}

void store_writer::write(const std::shared_ptr<ledger>& owner, const model::page& page, std::int64_t now_ms,
                         const std::optional<store::slice_report>& finish, const std::shared_ptr<write_ticket>& ticket,
                         const net::any_io_executor& work) {
    auto deliver = [&](result<store::upsert_counts> r) { deliver_on(work, ticket, std::move(r)); };
    if (owner->failure) return deliver(*owner->failure);
    if (!store_.in_transaction()) {
        if (auto begun = store_.begin(); !begun) {
            owner->failure = begun.error();
            return deliver(begun.error());
        }
        batch_started_ = std::chrono::steady_clock::now();
    }
    const bool first_in_batch = std::find(batch_ledgers_.begin(), batch_ledgers_.end(), owner) == batch_ledgers_.end();
    if (first_in_batch && owner->pair) {
        if (auto fenced = store_.fence(*owner->pair); !fenced) {
            // The store rolled the whole transaction back: every page in it is lost.
            fail_batch(fenced.error());
            owner->failure = fenced.error();
            return deliver(fenced.error());
        }
    }
    auto counts = page.untyped.empty() ? write_typed(page, now_ms, finish) : write_untyped(page, now_ms, finish);
    if (!counts) {
        // The store rolled the whole transaction back: every page in it is lost.
        fail_batch(counts.error());
        owner->failure = counts.error();
        return deliver(counts.error());
    }
    if (first_in_batch) batch_ledgers_.push_back(owner);
    batch_incidents_ += counts->inserted + counts->changed;
    deliver(*counts);
}

result<store::upsert_counts> store_writer::write_typed(const model::page& page, std::int64_t now_ms,
                                                       const std::optional<store::slice_report>& finish) {
    return store_.write_page(page.incidents, now_ms, finish ? &*finish : nullptr, page.unknown_fields);
}

result<store::upsert_counts> store_writer::write_untyped(const model::page& page, std::int64_t now_ms,
                                                         std::optional<store::slice_report> finish) {
    // Only incidents whose bytes differ from the stored copy get typed.
    store::upsert_counts same;
    std::vector<std::string_view> changed;
    auto hashes = store_.stored_content_hashes(page.untyped);
    if (!hashes) return hashes.error();
    for (std::size_t i = 0; i < page.untyped.size(); ++i) {
        const auto& raw = page.untyped[i];
        const auto& stored = (*hashes)[i];
        if (stored && *stored == raw.content_hash) {
            ++same.seen;
            ++same.unchanged;
        } else {
            changed.push_back(raw.raw_json);
        }
    }
    // The usual re-read: nothing changed, nothing to type.
    model::page typed;
    if (!changed.empty()) {
        auto parsed = api::parse_incident_objects(changed);
        if (!parsed) {
            store_.rollback();  // cannot happen for bytes that parsed as part of their page; be safe anyway
            return parsed.error();
        }
        typed = std::move(*parsed);
    }
    if (finish) finish->counts += same;  // the slice's totals count the unchanged ones too
    auto counts = store_.write_page(typed.incidents, now_ms, finish ? &*finish : nullptr, typed.unknown_fields);
    if (counts) *counts += same;
    return counts;
}

void store_writer::commit_batch() {
    if (!store_.in_transaction()) return;
    if (auto r = store_.commit(); !r) {
        spdlog::error("{}", r.error().message);
        fail_batch(r.error());
        return;
    }
    spdlog::trace("writer: committed {} written incident(s) of {} poll(s)", batch_incidents_, batch_ledgers_.size());
    ++commits_;
    batch_ledgers_.clear();
    batch_incidents_ = 0;
}

void store_writer::fail_batch(const error& e) {
    for (auto& l : batch_ledgers_)
        if (!l->failure) l->failure = e;
    batch_ledgers_.clear();
    batch_incidents_ = 0;
}

void store_writer::thread_main() {
    pthread_setname_np(pthread_self(), "isync-writer");  // shows in top -H, perf, gdb
    const auto started = std::chrono::steady_clock::now();
    for (;;) {
        job next;
        {
            std::unique_lock lock(mutex_);
            // With a transaction open, wait only until it is due: when no page
            // has come for idle_commit, or it reached max_batch_age.
            auto ready = [this] { return !queue_.empty() || stopping_; };
            const auto from = std::chrono::steady_clock::now();
            if (store_.in_transaction())
                wake_.wait_until(lock, std::min(from + limits_.idle_commit, batch_started_ + limits_.max_batch_age),
                                 ready);
            else
                wake_.wait(lock, ready);
            waited_ += std::chrono::steady_clock::now() - from;
            if (queue_.empty()) {
                if (store_.in_transaction()) {  // due, or stopping: make what was written durable
                    lock.unlock();
                    commit_batch();
                    continue;
                }
                // Stopping, and everything was written and committed.
                using ms = std::chrono::milliseconds;
                spdlog::debug(
                    "writer: {} ms busy, {} ms waiting for work, {} commit(s)",
                    std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - started - waited_).count(),
                    std::chrono::duration_cast<ms>(waited_).count(), commits_);
                return;
            }
            next = std::move(queue_.front());
            queue_.pop_front();
        }
        if (next.barrier) commit_batch();
        next.run();
        if (batch_incidents_ >= limits_.max_batch_incidents ||
            (store_.in_transaction() && std::chrono::steady_clock::now() - batch_started_ >= limits_.max_batch_age))
            commit_batch();
    }
}

}  // namespace isync::sync
