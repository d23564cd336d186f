#pragma once
// Tracked, cancellable coroutines: no orphans. Every task gets its own
// cancellation signal; `cancel_all` emits them, `wait_all` resumes once
// every task has finished. Single-threaded (the event loop's strand).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <list>
#include <string>

namespace isync::util {

class task_group {
public:
    explicit task_group(boost::asio::any_io_executor executor);

    // Starts `task`; `name` appears in the log if it throws. Returns an id for cancel().
    std::uint64_t spawn(std::string name, boost::asio::awaitable<void> task);

    // Requests cancellation of one task (no-op when it already finished).
    void cancel(std::uint64_t id);
    void cancel_all();

    // Completes when no task is running.
    boost::asio::awaitable<void> wait_all();

    std::size_t size() const { return tasks_.size(); }

private:
    struct entry {
        std::uint64_t id = 0;
        std::string name;
        boost::asio::cancellation_signal signal;
    };

    void finished(std::list<entry>::iterator it);

    boost::asio::any_io_executor executor_;
    std::list<entry> tasks_;  // std::list: signals must not move while in use
    boost::asio::steady_timer idle_;
    std::uint64_t next_id_ = 1;
};

}  // namespace isync::util
