#include "ops/ops_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <fmt/format.h>

#include <charconv>

namespace isync::ops {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
}

tcp::endpoint to_endpoint(const config::listen_address& listen) {
    return tcp::endpoint(net::ip::make_address(listen.address), listen.port);
}

result<tcp::endpoint> parse_listen_address(std::string_view listen) {
    auto parsed = config::parse_listen_address(listen);
    if (!parsed) return config::to_error(parsed.error(), "metrics.listen: ");
    return to_endpoint(*parsed);
}

result<std::unique_ptr<ops_server>> ops_server::start(net::any_io_executor executor,
                                                      const config::listen_address& listen, http_handler handler) {
    const auto endpoint = to_endpoint(listen);
    tcp::acceptor acceptor(executor);
    boost::system::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error(errc::config, fmt::format("metrics.listen: cannot listen on {}: {}; pick a free port or "
                                                    "set metrics.listen: \"\" to turn the endpoint off",
                                                    fmt::format("{}:{}", listen.address, listen.port), ec.message()));
    std::unique_ptr<ops_server> server(new ops_server(executor, std::move(acceptor), std::move(handler)));
    server->sessions_.spawn("metrics accept loop", server->accept_loop());
    return server;
}

ops_server::ops_server(net::any_io_executor executor, tcp::acceptor acceptor, http_handler handler)
    : acceptor_(std::move(acceptor)), handler_(std::move(handler)), sessions_(executor) {}

ops_server::~ops_server() { stop(); }

std::uint16_t ops_server::port() const { return acceptor_.local_endpoint().port(); }

void ops_server::stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    sessions_.cancel_all();
}

net::awaitable<void> ops_server::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (ec) co_return;
        sessions_.spawn("metrics session", serve(std::move(socket)));
    }
}

net::awaitable<void> ops_server::serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        // A scraper that stalls is cut off: this endpoint must never pile up sockets.
        stream.expires_after(std::chrono::seconds(10));
        bhttp::request_parser<bhttp::empty_body> parser;
        parser.header_limit(8 * 1024);
        auto [rec, r] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
        if (rec) co_return;
        const auto& req = parser.get();
        http_reply reply;
        if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head)
            reply = {405, "text/plain; charset=utf-8", "only GET\n"};
        else
            reply = handler_(std::string_view(req.target().data(), req.target().size()));
        bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(reply.status), req.version()};
        res.set(bhttp::field::content_type, reply.content_type);
        res.set(bhttp::field::cache_control, "no-store");
        res.keep_alive(req.keep_alive());
        if (req.method() != bhttp::verb::head) res.body() = std::move(reply.body);
        res.prepare_payload();
        auto [wec, w] = co_await bhttp::async_write(stream, res, use_tuple);
        if (wec || !res.keep_alive()) break;
        (void)r;
        (void)w;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace isync::ops
