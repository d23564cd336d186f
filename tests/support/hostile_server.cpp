#include "support/hostile_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace test_support {
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

struct hostile_server::impl {
    hostile_scenario scenario;
    fake_api::credentials ca = fake_api::make_ca("hostile test CA");
    fake_api::credentials leaf = fake_api::make_leaf(ca, {"localhost"}, {"127.0.0.1"});
    net::io_context ioc;
    ssl::context tls{ssl::context::tls_server};
    tcp::acceptor acceptor{ioc, {net::ip::make_address("127.0.0.1"), 0}};
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<bool> stopping{false};
    std::mutex mutex;
    std::condition_variable wake;  // cuts a pause short when the server is destroyed
    std::thread thread;

    // Waits `d`; false when the server is being destroyed meanwhile.
    bool pause(std::chrono::milliseconds d) {
        std::unique_lock lock(mutex);
        return !wake.wait_for(lock, d, [&] { return stopping.load(); });
    }

    // Writes until the client gives up (an error) or the test ends.
    void serve_one() {
        boost::system::error_code ec;
        tcp::socket socket(ioc);
        acceptor.accept(socket, ec);
        if (ec || stopping) return;
        ssl::stream<tcp::socket> stream(std::move(socket), tls);
        stream.handshake(ssl::stream_base::server, ec);
        if (ec) return;
        net::streambuf request;
        net::read_until(stream, request, "\r\n\r\n", ec);
        if (ec) return;
        ++requests;
        auto send = [&](const std::string& bytes) {
            net::write(stream, net::buffer(bytes), ec);
            if (!ec) sent += bytes.size();
            return !ec && !stopping;
        };
        switch (scenario) {
            case hostile_scenario::huge_headers:
                if (!send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")) return;
                for (int i = 0; i < 1024; ++i)  // 1 MiB of headers
                    if (!send("X-Pad-" + std::to_string(i) + ": " + std::string(1000, 'a') + "\r\n")) return;
                send("Content-Length: 2\r\n\r\n{}");
                break;
            case hostile_scenario::endless_chunked: {
                if (!send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"))
                    return;
                const std::string chunk = "1000\r\n" + std::string(4096, ' ') + "\r\n";
                while (send(chunk)) {
                }
                break;
            }
            case hostile_scenario::redirect:
                send(
                    "HTTP/1.1 302 Found\r\nLocation: https://attacker.example/v1/incidents\r\nContent-Length: "
                    "0\r\n\r\n");
                break;
            case hostile_scenario::huge_body: {
                if (!send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"))
                    return;
                const std::string block(65536, ' ');
                for (int i = 0; i < 1600 && send(block); ++i) {
                }
                break;
            }
            case hostile_scenario::never_answers:
                // Silence until the client's deadline makes it hang up (the read
                // then fails). The poll timeout only lets a destructor in.
                while (!stopping) {
                    pollfd p{stream.next_layer().native_handle(), POLLIN, 0};
                    if (::poll(&p, 1, 100) <= 0) continue;
                    char byte = 0;
                    stream.read_some(net::buffer(&byte, 1), ec);
                    if (ec) return;
                }
                return;
            case hostile_scenario::dribble: {
                // A byte every 250 ms, far inside any per-read timeout: only a
                // deadline on the whole response ends this. The headers never end.
                const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Dribble: ";
                for (std::size_t i = 0;; ++i) {
                    if (!send(std::string(1, i < head.size() ? head[i] : 'a'))) return;
                    if (!pause(std::chrono::milliseconds(250))) return;
                }
            }
            case hostile_scenario::non_json: {
                const std::string page =
                    "<html><head><title>Sign in to this network</title></head><body><form>...</form></body></html>";
                send(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n"
                    "Content-Length: " +
                    std::to_string(page.size()) + "\r\n\r\n" + page);
                break;
            }
        }
        stream.shutdown(ec);
    }
};

hostile_server::hostile_server(hostile_scenario scenario) : impl_(std::make_unique<impl>()) {
    impl_->scenario = scenario;
    impl_->tls.use_certificate_chain(net::buffer(impl_->leaf.cert_pem));
    impl_->tls.use_private_key(net::buffer(impl_->leaf.key_pem), ssl::context::pem);
    impl_->thread = std::thread([this] {
        while (!impl_->stopping) impl_->serve_one();
    });
}

hostile_server::~hostile_server() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wake.notify_all();
    boost::system::error_code ec;
    // Wake a blocked accept with a connection of our own, and close the
    // acceptor only once the thread is gone: closing it under a running
    // accept() is a data race (ThreadSanitizer caught it).
    tcp::socket poke(impl_->ioc);
    poke.connect(impl_->acceptor.local_endpoint(), ec);
    impl_->thread.join();
    impl_->acceptor.close(ec);
}

std::uint16_t hostile_server::port() const { return impl_->acceptor.local_endpoint().port(); }
const std::string& hostile_server::ca_pem() const { return impl_->ca.cert_pem; }
std::uint64_t hostile_server::bytes_sent() const { return impl_->sent; }
std::uint64_t hostile_server::requests() const { return impl_->requests; }

}  // namespace test_support
