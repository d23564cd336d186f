#include "http/name_lookup.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

namespace isync::http {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// What the lookup thread found, read by the caller only after the thread's
// byte arrived (the mutex makes that ordering explicit).
struct lookup_state {
    std::mutex mutex;
    int rc = 0;
    int saved_errno = 0;
    std::vector<tcp::endpoint> endpoints;
};

// getaddrinfo's answer as Asio's resolver would report it.
boost::system::error_code addrinfo_error(int rc, int saved_errno) {
    switch (rc) {
        case 0:
            return {};
        case EAI_NONAME:
#ifdef EAI_NODATA
        case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
        case EAI_ADDRFAMILY:
#endif
            return net::error::host_not_found;
        case EAI_AGAIN:
            return net::error::host_not_found_try_again;
        case EAI_FAIL:
            return net::error::no_recovery;
        case EAI_MEMORY:
            return net::error::no_memory;
        case EAI_SERVICE:
            return net::error::service_not_found;
        case EAI_SYSTEM:
            return {saved_errno, boost::system::system_category()};
        default:
            return net::error::no_recovery;
    }
}

void resolve_into(const std::shared_ptr<lookup_state>& state, const std::string& host, const std::string& service) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    const int saved_errno = errno;
    std::vector<tcp::endpoint> endpoints;
    for (const addrinfo* a = found; rc == 0 && a != nullptr; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
        tcp::endpoint e;
        std::memcpy(e.data(), a->ai_addr, a->ai_addrlen);
        endpoints.push_back(e);
    }
    if (found) ::freeaddrinfo(found);
    const std::lock_guard lock(state->mutex);
    state->rc = rc;
    state->saved_errno = saved_errno;
    state->endpoints = std::move(endpoints);
}

}  // namespace

net::awaitable<lookup_result> lookup_host(net::any_io_executor executor, std::string host, std::uint16_t port,
                                          std::chrono::milliseconds deadline) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        co_return lookup_result{{errno, boost::system::system_category()}, {}};
    auto state = std::make_shared<lookup_state>();
    auto reader = std::make_shared<net::posix::stream_descriptor>(executor, fds[0]);
    try {
        std::thread([state, host, service = std::to_string(port), done = fds[1]] {
            resolve_into(state, host, service);
            const char byte = 1;
            // The caller may have stopped listening (deadline, stop): then the
            // send fails with EPIPE, which is fine.
            (void)::send(done, &byte, 1, MSG_NOSIGNAL);
            ::close(done);
        }).detach();
    } catch (const std::system_error& e) {
        ::close(fds[1]);
        co_return lookup_result{e.code(), {}};
    }

    // The timer's handler shares the reader: it may run after this frame moved on.
    auto timed_out = std::make_shared<bool>(false);
    net::steady_timer timer(executor, deadline);
    timer.async_wait([reader, timed_out](boost::system::error_code ec) {
        if (ec) return;
        *timed_out = true;
        boost::system::error_code ignored;
        reader->cancel(ignored);
    });
    char byte = 0;
    auto [ec, n] = co_await reader->async_read_some(net::buffer(&byte, 1), net::as_tuple(net::use_awaitable));
    timer.cancel();
    if (*timed_out) co_return lookup_result{boost::beast::error::timeout, {}};
    if (ec) co_return lookup_result{ec, {}};
    (void)n;
    const std::lock_guard lock(state->mutex);
    lookup_result out{addrinfo_error(state->rc, state->saved_errno), std::move(state->endpoints)};
    if (!out.ec && out.endpoints.empty()) out.ec = net::error::host_not_found;
    co_return out;
}

}  // namespace isync::http
