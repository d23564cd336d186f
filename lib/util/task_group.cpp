#include "util/task_group.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <spdlog/spdlog.h>

namespace isync::util {
namespace net = boost::asio;

task_group::task_group(net::any_io_executor executor) : executor_(executor), idle_(executor) {}

std::uint64_t task_group::spawn(std::string name, net::awaitable<void> task) {
    const std::uint64_t id = next_id_++;
    auto it = tasks_.emplace(tasks_.end());
    it->id = id;
    it->name = std::move(name);
    net::co_spawn(executor_, std::move(task),
                  net::bind_cancellation_slot(it->signal.slot(), [this, it](std::exception_ptr e) {
                      if (e) {
                          try {
                              std::rethrow_exception(e);
                          } catch (const boost::system::system_error& ex) {
                              // A cancelled coroutine throws operation_aborted at its
                              // next co_await: that is how a requested stop ends it,
                              // not an error.
                              if (ex.code() == net::error::operation_aborted)
                                  spdlog::debug("task {} cancelled", it->name);
                              else
                                  spdlog::error("task {} ended with an unexpected error: {}", it->name, ex.what());
                          } catch (const std::exception& ex) {
                              spdlog::error("task {} ended with an unexpected error: {}", it->name, ex.what());
                          }
                      }
                      // The signal is still referenced while this handler runs: erase later.
                      net::post(executor_, [this, it] { finished(it); });
                  }));
    return id;
}

void task_group::finished(std::list<entry>::iterator it) {
    tasks_.erase(it);
    if (tasks_.empty()) idle_.cancel();
}

void task_group::cancel(std::uint64_t id) {
    for (auto& t : tasks_)
        if (t.id == id) t.signal.emit(net::cancellation_type::terminal);
}

void task_group::cancel_all() {
    for (auto& t : tasks_) t.signal.emit(net::cancellation_type::terminal);
}

net::awaitable<void> task_group::wait_all() {
    while (!tasks_.empty()) {
        idle_.expires_at(net::steady_timer::time_point::max());
        co_await idle_.async_wait(net::as_tuple(net::use_awaitable));
    }
}

}  // namespace isync::util
