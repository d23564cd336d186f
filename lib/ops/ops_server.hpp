#pragma once
// A small plain-HTTP server in the daemon's event loop for /metrics,
// /healthz and /readyz. Loopback by default (`metrics.listen`).

#include "config/addresses.hpp"
#include "util/error.hpp"
#include "util/task_group.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace isync::ops {

struct http_reply {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

// Answers a GET for `target`.
using http_handler = std::function<http_reply(std::string_view target)>;

// The socket address of a listen address the loader parsed (config/addresses.hpp).
boost::asio::ip::tcp::endpoint to_endpoint(const config::listen_address& listen);
// config::parse_listen_address as an errc::config error naming metrics.listen.
result<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view listen);

class ops_server {
public:
    // Binds and starts accepting. Fails with errc::config when the address is
    // malformed or cannot be bound (in use, not local).
    static result<std::unique_ptr<ops_server>> start(boost::asio::any_io_executor executor,
                                                     const config::listen_address& listen, http_handler handler);
    ~ops_server();

    std::uint16_t port() const;
    // Stops accepting and cancels open connections.
    void stop();

private:
    ops_server(boost::asio::any_io_executor executor, boost::asio::ip::tcp::acceptor acceptor, http_handler handler);
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

    boost::asio::ip::tcp::acceptor acceptor_;
    http_handler handler_;
    util::task_group sessions_;
};

}  // namespace isync::ops
