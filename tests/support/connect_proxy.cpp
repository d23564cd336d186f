#include "support/connect_proxy.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <mutex>
#include <thread>

namespace test_support {
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct connect_proxy::impl {
    net::io_context ioc{1};
    tcp::acceptor acceptor{ioc, {net::ip::make_address("127.0.0.1"), 0}};
    std::thread thread;
    mutable std::mutex mutex;
    std::uint64_t tunnels = 0;
    std::vector<std::string> authorities;
    std::string required;  // empty: no credentials needed
    std::uint64_t refused_407 = 0;
    std::vector<std::string> authorizations;

    static std::string header_value(const std::string& head, std::string_view name) {
        std::string lower = head;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        const auto at = lower.find("\r\n" + std::string(name) + ":");
        if (at == std::string::npos) return {};
        auto start = at + 2 + name.size() + 1;
        while (start < head.size() && head[start] == ' ') ++start;
        return head.substr(start, head.find("\r\n", start) - start);
    }

    static net::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
        char buf[16384];
        for (;;) {
            auto [ec, n] = co_await from->async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
            if (ec) break;
            auto [wec, w] = co_await net::async_write(*to, net::buffer(buf, n), net::as_tuple(net::use_awaitable));
            if (wec) break;
        }
        boost::system::error_code ignored;
        to->shutdown(tcp::socket::shutdown_send, ignored);
    }

    net::awaitable<void> serve(std::shared_ptr<tcp::socket> client) {
        net::streambuf head;
        auto [ec, n] = co_await net::async_read_until(*client, head, "\r\n\r\n", net::as_tuple(net::use_awaitable));
        if (ec) co_return;
        std::string request(net::buffers_begin(head.data()), net::buffers_begin(head.data()) + static_cast<long>(n));
        head.consume(n);
        // "CONNECT host:port HTTP/1.1"
        const auto first_space = request.find(' ');
        const auto second_space = request.find(' ', first_space + 1);
        const std::string method = request.substr(0, first_space);
        const std::string authority = request.substr(first_space + 1, second_space - first_space - 1);
        const std::string given = header_value(request, "proxy-authorization");
        bool authorized = true;
        {
            std::lock_guard lock(mutex);
            authorities.push_back(authority);
            authorizations.push_back(given);
            if (!required.empty() && given != required) {
                authorized = false;
                ++refused_407;
            }
        }
        if (!authorized) {
            const std::string refusal =
                "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n"
                "Content-Length: 0\r\n\r\n";
            co_await net::async_write(*client, net::buffer(refusal), net::as_tuple(net::use_awaitable));
            co_return;
        }
        const auto colon = authority.rfind(':');
        auto upstream = std::make_shared<tcp::socket>(ioc);
        boost::system::error_code cec = net::error::access_denied;
        // Only loopback: this proxy must never become an open relay.
        if (method == "CONNECT" && colon != std::string::npos &&
            (authority.substr(0, colon) == "127.0.0.1" || authority.substr(0, colon) == "localhost")) {
            tcp::endpoint ep(net::ip::make_address("127.0.0.1"),
                             static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1))));
            std::tie(cec) = co_await upstream->async_connect(ep, net::as_tuple(net::use_awaitable));
        }
        const std::string answer =
            cec ? "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n" : "HTTP/1.1 200 Connection established\r\n\r\n";
        co_await net::async_write(*client, net::buffer(answer), net::as_tuple(net::use_awaitable));
        if (cec) co_return;
        {
            std::lock_guard lock(mutex);
            ++tunnels;
        }
        net::co_spawn(ioc, pump(client, upstream), net::detached);
        co_await pump(upstream, client);
    }

    net::awaitable<void> accept_loop() {
        for (;;) {
            auto socket = std::make_shared<tcp::socket>(ioc);
            auto [ec] = co_await acceptor.async_accept(*socket, net::as_tuple(net::use_awaitable));
            if (ec) co_return;
            net::co_spawn(ioc, serve(socket), net::detached);
        }
    }
};

connect_proxy::connect_proxy() : impl_(std::make_unique<impl>()) {
    net::co_spawn(impl_->ioc, impl_->accept_loop(), net::detached);
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

connect_proxy::~connect_proxy() {
    impl_->ioc.stop();
    impl_->thread.join();
}

std::uint16_t connect_proxy::port() const { return impl_->acceptor.local_endpoint().port(); }

std::uint64_t connect_proxy::tunnels() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->tunnels;
}

std::vector<std::string> connect_proxy::authorities() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->authorities;
}

void connect_proxy::require_authorization(std::string value) {
    std::lock_guard lock(impl_->mutex);
    impl_->required = std::move(value);
}

std::uint64_t connect_proxy::refused_407() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->refused_407;
}

std::vector<std::string> connect_proxy::authorizations() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->authorizations;
}

}  // namespace test_support
