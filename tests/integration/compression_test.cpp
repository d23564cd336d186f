// The HTTPS client against a scripted TLS server that answers with compressed
// bodies (and one that ignores Accept-Encoding): the client asks for gzip and
// deflate, hands back the decoded body, counts both sizes, and refuses a body
// that inflates past api.max_body.
#include "fake_api/pki.hpp"
#include "http/connection.hpp"
#include "http/tls_context.hpp"
#include "support/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using isync::errc;
using isync::test::contains;

std::string compress(const std::string& input, int window_bits, int repeat = 1) {
    z_stream z{};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2");
    std::string out;
    std::vector<unsigned char> buffer(64 * 1024);
    for (int i = 0; i < repeat; ++i) {
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
        z.avail_in = static_cast<uInt>(input.size());
        do {
            z.next_out = buffer.data();
            z.avail_out = static_cast<uInt>(buffer.size());
            deflate(&z, i + 1 == repeat ? Z_FINISH : Z_NO_FLUSH);
            out.append(reinterpret_cast<const char*>(buffer.data()), buffer.size() - z.avail_out);
        } while (z.avail_out == 0);
    }
    deflateEnd(&z);
    return out;
}

std::string json_page() {
    std::string page = R"({"data":[)";
    for (int i = 0; i < 200; ++i)
        page += (i ? "," : "") + std::string(R"({"id":"inc-)") + std::to_string(i) +
                R"(","severity":"high","status":"open","title":"Script injected from cdn.example.net"})";
    return page + "]}";
}

std::string with_length(std::string head, const std::string& body) {
    return head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Answers the i-th request it reads (over any number of connections, one at a
// time) with the i-th scripted response, byte for byte; records the requests.
class scripted_server {
public:
    explicit scripted_server(std::vector<std::string> responses) : responses_(std::move(responses)) {
        tls_.use_certificate_chain(net::buffer(leaf_.cert_pem));
        tls_.use_private_key(net::buffer(leaf_.key_pem), ssl::context::pem);
        thread_ = std::thread([this] {
            while (!stopping_) serve_connection();
        });
    }
    ~scripted_server() {
        stopping_ = true;
        boost::system::error_code ec;
        tcp::socket poke(ioc_);  // wakes a blocked accept
        poke.connect(acceptor_.local_endpoint(), ec);
        thread_.join();
        acceptor_.close(ec);
    }
    scripted_server(const scripted_server&) = delete;
    scripted_server& operator=(const scripted_server&) = delete;

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    const std::string& ca_pem() const { return ca_.cert_pem; }
    std::vector<std::string> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }

private:
    void serve_connection() {
        boost::system::error_code ec;
        tcp::socket socket(ioc_);
        acceptor_.accept(socket, ec);
        if (ec || stopping_) return;
        ssl::stream<tcp::socket> stream(std::move(socket), tls_);
        stream.handshake(ssl::stream_base::server, ec);
        if (ec) return;
        net::streambuf buffer;
        while (!stopping_) {
            const std::size_t n = net::read_until(stream, buffer, "\r\n\r\n", ec);
            if (ec) return;  // the client hung up
            std::string request(net::buffers_begin(buffer.data()), net::buffers_begin(buffer.data()) + n);
            buffer.consume(n);
            std::size_t index = 0;
            {
                std::lock_guard lock(mutex_);
                requests_.push_back(std::move(request));
                index = requests_.size() - 1;
            }
            if (index >= responses_.size()) break;
            net::write(stream, net::buffer(responses_[index]), ec);
            if (ec) return;
        }
        stream.shutdown(ec);
    }

    std::vector<std::string> responses_;
    fake_api::credentials ca_ = fake_api::make_ca("compression test CA");
    fake_api::credentials leaf_ = fake_api::make_leaf(ca_, {"localhost"}, {"127.0.0.1"});
    net::io_context ioc_;
    ssl::context tls_{ssl::context::tls_server};
    tcp::acceptor acceptor_{ioc_, {net::ip::make_address("127.0.0.1"), 0}};
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::vector<std::string> requests_;
    std::thread thread_;
};

struct outcome {
    std::vector<isync::result<isync::http::response>> results;
    isync::http::connection_stats stats;
};

// `requests` GETs over one client connection (replaced if the client drops it).
outcome get_from(scripted_server& server, int requests, std::uint64_t body_limit = 64ull << 20) {
    isync::test::temp_dir dir;
    std::ofstream(dir.file("ca.pem")) << server.ca_pem();
    auto tls = isync::http::make_tls_context({dir.file("ca.pem"), false}).value();
    isync::http::connection_options options;
    options.endpoint = {"127.0.0.1", server.port(), ""};
    options.timeout = std::chrono::seconds(10);
    options.body_limit = body_limit;
    net::io_context ioc(1);
    isync::http::connection conn(ioc.get_executor(), *tls, options);
    outcome out;
    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
            for (int i = 0; i < requests; ++i)
                out.results.push_back(co_await conn.get("/v1/incidents?appId=a", isync::config::secret("t")));
            co_await conn.shutdown();
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    ioc.run();
    out.stats = conn.stats();
    return out;
}

}  // namespace

TEST(CompressionOverTls, GzipDeflateAndPlainBodiesAreAllReturnedDecoded) {
    const std::string page = json_page();
    const std::string gz = compress(page, MAX_WBITS + 16);
    const std::string raw = compress(page, -MAX_WBITS);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    // Chunked, split mid-stream: the decoder sees the body only once it is whole.
    const std::string chunked_raw = head + "Content-Encoding: Deflate\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                    fmt::format("{:x}\r\n", 7) + raw.substr(0, 7) + "\r\n" +
                                    fmt::format("{:x}\r\n", raw.size() - 7) + raw.substr(7) + "\r\n0\r\n\r\n";
    scripted_server server({
        with_length(head + "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n", gz),
        with_length(head, page),  // a server that ignores Accept-Encoding
        chunked_raw,
    });
    auto out = get_from(server, 3);
    ASSERT_EQ(out.results.size(), 3u);
    for (std::size_t i = 0; i < out.results.size(); ++i) {
        ASSERT_TRUE(out.results[i]) << "response " << i << ": " << out.results[i].error().message;
        EXPECT_EQ(out.results[i]->status, 200u);
        EXPECT_EQ(out.results[i]->body, page) << "response " << i;
    }
    EXPECT_EQ(out.stats.connects, 1u);  // all three over one kept-alive connection
    EXPECT_EQ(out.stats.wire_body_bytes, gz.size() + page.size() + raw.size());
    EXPECT_EQ(out.stats.decoded_body_bytes, 3 * page.size());

    const auto requests = server.requests();
    ASSERT_GE(requests.size(), 1u);
    EXPECT_TRUE(contains(requests[0], "\r\nAccept-Encoding: gzip, deflate\r\n"));
}

TEST(CompressionOverTls, AGzipBombIsRefusedAtTheLimitOnTheDecodedSize) {
    // 64 MiB of zeros in about 64 KiB: within the 1 MiB limit on the wire.
    const std::string bomb = compress(std::string(1 << 20, '\0'), MAX_WBITS + 16, 64);
    ASSERT_LT(bomb.size(), 1u << 20);
    scripted_server server({with_length("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", bomb)});
    auto out = get_from(server, 1, 1 << 20);
    ASSERT_FALSE(out.results.at(0));
    const auto& e = out.results[0].error();
    EXPECT_EQ(e.code, errc::too_large);
    EXPECT_EQ(e.message, fmt::format("reading the response from 127.0.0.1:{}: the decompressed response body exceeds "
                                     "api.max_body (1048576 bytes)",
                                     server.port()));
    EXPECT_EQ(out.stats.wire_body_bytes, bomb.size());
    EXPECT_EQ(out.stats.decoded_body_bytes, 0u);
}

TEST(CompressionOverTls, ATruncatedOrForeignCodedBodyIsATransportError) {
    const std::string gz = compress(json_page(), MAX_WBITS + 16);
    scripted_server server({
        with_length("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", gz.substr(0, gz.size() / 2)),
        with_length("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n", std::string("\x0b\x02\x80{}\x03", 6)),
    });
    auto out = get_from(server, 2);
    ASSERT_EQ(out.results.size(), 2u);
    ASSERT_FALSE(out.results[0]);
    EXPECT_EQ(out.results[0].error().code, errc::transport);
    EXPECT_TRUE(contains(out.results[0].error().message, "the compressed response body is truncated"));
    ASSERT_FALSE(out.results[1]);
    EXPECT_EQ(out.results[1].error().code, errc::transport);
    EXPECT_TRUE(contains(out.results[1].error().message, "Content-Encoding \"br\""));
}
