#pragma once
// One keep-alive HTTPS connection to the API (optionally through an HTTP
// CONNECT proxy), reused for all the pages of a pair's poll and replaced
// transparently when the server closed it. Every step has a deadline and
// every read a size limit.

#include "api/request.hpp"
#include "config/secret.hpp"
#include "http/proxy.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace isync::http {

struct connection_options {
    api::endpoint endpoint;
    std::optional<proxy_endpoint> proxy;
    std::chrono::milliseconds timeout{30000};  // connect, handshake, and the whole request/response
    std::uint64_t body_limit = 64ull << 20;
    std::uint32_t header_limit = 64 * 1024;
    std::string user_agent = "incident-syncd";
    bool verify_peer = true;  // false only with api.insecure_skip_tls_verify
};

struct response {
    unsigned status = 0;
    std::string body;
    std::string content_type;
    std::string retry_after;
    std::string date;                  // the server's clock (api::server_now_ms)
    std::string rate_limit_remaining;  // X-RateLimit-Remaining
    std::string rate_limit_reset;      // X-RateLimit-Reset
};

struct connection_stats {
    std::uint64_t connects = 0;            // TCP+TLS connections opened
    std::uint64_t requests = 0;            // requests sent
    std::uint64_t wire_body_bytes = 0;     // response body bytes as received (compressed, if they were)
    std::uint64_t decoded_body_bytes = 0;  // the same bodies decoded (what `response::body` held)
};

class connection {
public:
    // `tls` must outlive the connection (it is the process's one context).
    connection(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls, connection_options options);
    ~connection();

    // Sends GET `target` with `Authorization: Bearer <token>` and
    // `Accept-Encoding: gzip, deflate`, reads the whole response and decodes
    // its body (never to more than `body_limit` bytes, compressed or not).
    // Errors: errc::timeout, errc::too_large, errc::tls_refused (the
    // certificate), errc::no_such_host (NXDOMAIN), errc::transport
    // (with a message that says which step failed and, for TLS, why the
    // certificate was refused; also a compressed body that is truncated,
    // corrupt or in a coding not asked for), errc::cancelled. Never mentions
    // the token.
    // The token is revealed only where the Authorization header is written.
    boost::asio::awaitable<result<response>> get(std::string target, config::secret token);

    // Closes the connection (TLS close_notify, bounded by a short deadline).
    boost::asio::awaitable<void> shutdown();

    const connection_stats& stats() const { return stats_; }

private:
    using stream_type = boost::asio::ssl::stream<boost::beast::tcp_stream>;

    boost::asio::awaitable<result<void>> connect();
    boost::asio::awaitable<result<response>> exchange(const std::string& target, const config::secret& token,
                                                      bool& nothing_received);
    error describe(const boost::system::error_code& ec, std::string_view step) const;
    std::string where() const;  // "host:port", with the proxy when there is one

    boost::asio::any_io_executor executor_;
    boost::asio::ssl::context& tls_;
    connection_options options_;
    std::unique_ptr<stream_type> stream_;
    boost::beast::flat_buffer buffer_;
    std::string verify_failure_;  // why the peer's certificate was refused, if it was
    connection_stats stats_;
};

}  // namespace isync::http
