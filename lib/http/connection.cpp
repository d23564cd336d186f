#include "http/connection.hpp"

#include "util/base64.hpp"

#include "http/content_decoding.hpp"
#include "http/name_lookup.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <fmt/format.h>
#include <openssl/x509_vfy.h>

namespace isync::http {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    net::ip::make_address(host, ec);
    return !ec;
}

std::string verify_error_text(int code) {
    switch (code) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return "the server's certificate has expired";
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return "the server's certificate is not valid yet (check the clock)";
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            return "the server's certificate is self-signed";
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
            return "the server's certificate was issued by an unknown CA (add it with api.ca_file)";
        default:
            return fmt::format("the server's certificate was refused: {}", X509_verify_cert_error_string(code));
    }
}

}  // namespace

connection::connection(net::any_io_executor executor, ssl::context& tls, connection_options options)
    : executor_(std::move(executor)), tls_(tls), options_(std::move(options)) {}

connection::~connection() = default;

std::string connection::where() const {
    return options_.proxy ? fmt::format("{}:{} via proxy {}:{}", options_.endpoint.host, options_.endpoint.port,
                                        options_.proxy->host, options_.proxy->port)
                          : fmt::format("{}:{}", options_.endpoint.host, options_.endpoint.port);
}

error connection::describe(const boost::system::error_code& ec, std::string_view step) const {
    const auto where = this->where();
    if (ec == beast::error::timeout)
        return make_error(errc::timeout, fmt::format("{} {}: no answer within api.timeout ({} ms)", step, where,
                                                     options_.timeout.count()));
    if (ec == net::error::operation_aborted)
        return make_error(errc::cancelled, fmt::format("{} {}: cancelled", step, where));
    if (ec == bhttp::error::body_limit)
        return make_error(errc::too_large, fmt::format("{} {}: the response body exceeds api.max_body ({} bytes)", step,
                                                       where, options_.body_limit));
    if (ec == bhttp::error::header_limit)
        return make_error(errc::too_large, fmt::format("{} {}: the response headers exceed {} bytes", step, where,
                                                       options_.header_limit));
    if (!verify_failure_.empty())
        return make_error(errc::tls_refused, fmt::format("{} {}: TLS refused: {}", step, where, verify_failure_));
    if (ec == net::error::host_not_found)
        return make_error(
            errc::no_such_host,
            fmt::format("{} {}: no such host (the name does not exist in DNS); check api.base_url", step, where));
    if (ec == ssl::error::stream_truncated || ec == bhttp::error::partial_message || ec == net::error::eof)
        return make_error(
            errc::transport,
            fmt::format("{} {}: the server closed the connection before the response was complete", step, where));
    return make_error(errc::transport, fmt::format("{} {}: {}", step, where, ec.message()));
}

net::awaitable<result<void>> connection::connect() {
    stream_.reset();
    buffer_.clear();
    verify_failure_.clear();
    const std::string& host = options_.endpoint.host;
    const std::string connect_host = options_.proxy ? options_.proxy->host : host;
    const std::uint16_t connect_port = options_.proxy ? options_.proxy->port : options_.endpoint.port;

    // The name lookup is under api.timeout too (http/name_lookup.hpp).
    auto [rec, endpoints] = co_await lookup_host(executor_, connect_host, connect_port, options_.timeout);
    if (rec) co_return describe(rec, "resolving");

    auto stream = std::make_unique<stream_type>(executor_, tls_);
    auto& tcp_layer = beast::get_lowest_layer(*stream);
    tcp_layer.expires_after(options_.timeout);
    auto [cec, _] = co_await tcp_layer.async_connect(endpoints, use_tuple);
    if (cec) co_return describe(cec, "connecting to");

    if (options_.proxy) {
        // HTTP CONNECT: the proxy opens a TCP tunnel; TLS runs end to end through it.
        const std::string authority = fmt::format("{}:{}", host, options_.endpoint.port);
        bhttp::request<bhttp::empty_body> req{bhttp::verb::connect, authority, 11};
        req.set(bhttp::field::host, authority);
        req.set(bhttp::field::user_agent, options_.user_agent);
        const auto& proxy = *options_.proxy;
        if (!proxy.user.empty()) {
            const std::string proxy_authorization = util::base64_encode(proxy.user + ":" + proxy.password.reveal());
            req.set(bhttp::field::proxy_authorization, "Basic " + proxy_authorization);
        }
        tcp_layer.expires_after(options_.timeout);
        auto [wec, w] = co_await bhttp::async_write(tcp_layer, req, use_tuple);
        if (wec) co_return describe(wec, "asking the proxy for a tunnel to");
        bhttp::response_parser<bhttp::empty_body> parser;
        parser.skip(true);  // a CONNECT response has no body, whatever its headers say
        parser.header_limit(options_.header_limit);
        beast::flat_buffer proxy_buffer;
        auto [rec2, r] = co_await bhttp::async_read_header(tcp_layer, proxy_buffer, parser, use_tuple);
        if (rec2) co_return describe(rec2, "reading the proxy's answer for");
        // 407: no retry can change the answer, so the poll fails at once.
        if (parser.get().result_int() == 407)
            co_return make_error(
                errc::proxy_refused,
                proxy.user.empty()
                    ? fmt::format("the proxy {}:{} asks for credentials (HTTP 407 Proxy Authentication Required); "
                                  "give them as http://user:password@{}:{} in api.proxy or https_proxy, or the user "
                                  "there and the password in api.proxy_password_file",
                                  proxy.host, proxy.port, proxy.host, proxy.port)
                    : fmt::format("the proxy {}:{} refused the credentials of user \"{}\" (HTTP 407 Proxy "
                                  "Authentication Required); check the user and the password (api.proxy, "
                                  "https_proxy or api.proxy_password_file)",
                                  proxy.host, proxy.port, proxy.user));
        if (parser.get().result_int() / 100 != 2)
            co_return make_error(errc::transport,
                                 fmt::format("the proxy {}:{} refused to tunnel to {}: HTTP {}", options_.proxy->host,
                                             options_.proxy->port, authority, parser.get().result_int()));
        (void)w;
        (void)r;
    }

    if (options_.verify_peer) {
        // Host name verification on top of the chain check, recording why a
        // certificate was refused so the error can say "expired" or "unknown CA".
        stream->set_verify_callback(
            [this, check = ssl::host_name_verification(host)](bool preverified, ssl::verify_context& ctx) mutable {
                X509_STORE_CTX* store = ctx.native_handle();
                if (!preverified) {
                    if (verify_failure_.empty()) verify_failure_ = verify_error_text(X509_STORE_CTX_get_error(store));
                    return false;
                }
                if (X509_STORE_CTX_get_error_depth(store) == 0 && !check(preverified, ctx)) {
                    verify_failure_ =
                        fmt::format("the server's certificate is not valid for host \"{}\"", options_.endpoint.host);
                    return false;
                }
                return true;
            });
    }
    // SNI: required by most HTTPS front ends; RFC 6066 forbids it for IP literals.
    if (!is_ip_literal(host) && !SSL_set_tlsext_host_name(stream->native_handle(), host.c_str()))
        co_return make_error(errc::transport, fmt::format("setting TLS SNI to \"{}\" failed", host));

    tcp_layer.expires_after(options_.timeout);
    auto [hec] = co_await stream->async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) co_return describe(hec, "TLS handshake with");
    ++stats_.connects;
    stream_ = std::move(stream);
    co_return result<void>{};
}

net::awaitable<result<response>> connection::exchange(const std::string& target, const config::secret& token,
                                                      bool& nothing_received) {
    nothing_received = true;
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
    const std::string& h = options_.endpoint.host;
    const std::string host = h.find(':') != std::string::npos ? "[" + h + "]" : h;  // IPv6 literal
    req.set(bhttp::field::host,
            options_.endpoint.port == 443 ? host : fmt::format("{}:{}", host, options_.endpoint.port));
    req.set(bhttp::field::user_agent, options_.user_agent);
    req.set(bhttp::field::accept, "application/json");
    req.set(bhttp::field::accept_encoding, accepted_encodings);
    req.set(bhttp::field::authorization, "Bearer " + token.reveal());
    req.keep_alive(true);

    // One deadline for the whole request and response: a server that dribbles
    // bytes is cut off exactly like one that never answers.
    auto& tcp_layer = beast::get_lowest_layer(*stream_);
    tcp_layer.expires_after(options_.timeout);
    auto [wec, w] = co_await bhttp::async_write(*stream_, req, use_tuple);
    if (wec) co_return describe(wec, "sending the request to");
    ++stats_.requests;

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options_.body_limit);
    parser.header_limit(options_.header_limit);
    const std::size_t buffered_before = buffer_.size();
    auto [rec, r] = co_await bhttp::async_read(*stream_, buffer_, parser, use_tuple);
    nothing_received = rec && !parser.got_some() && buffered_before == 0;
    if (rec) co_return describe(rec, "reading the response from");
    (void)w;
    (void)r;

    auto msg = parser.release();
    if (!msg.keep_alive()) stream_.reset();  // the server will close it; do not reuse
    response out;
    out.status = msg.result_int();
    out.content_type = std::string(msg[bhttp::field::content_type]);
    out.retry_after = std::string(msg[bhttp::field::retry_after]);
    out.date = std::string(msg[bhttp::field::date]);
    out.rate_limit_remaining = std::string(msg["X-RateLimit-Remaining"]);
    out.rate_limit_reset = std::string(msg["X-RateLimit-Reset"]);
    // The parser's body_limit bounded the bytes on the wire; decoding gets the
    // same limit for what they inflate to. A header repeated on several lines
    // is one list (RFC 9110 §5.3), so a second line cannot hide a coding.
    std::string content_encoding;
    const auto [first_coding, end_coding] = msg.equal_range(bhttp::field::content_encoding);
    for (auto it = first_coding; it != end_coding; ++it) {
        if (!content_encoding.empty()) content_encoding += ", ";
        content_encoding += it->value();
    }
    stats_.wire_body_bytes += msg.body().size();
    auto body = decode_content(content_encoding, std::move(msg.body()), options_.body_limit);
    if (!body)
        co_return make_error(body.error().code,
                             fmt::format("reading the response from {}: {}", where(), body.error().message));
    out.body = std::move(*body);
    stats_.decoded_body_bytes += out.body.size();
    co_return out;
}

net::awaitable<result<response>> connection::get(std::string target, config::secret token) {
    const bool reused = stream_ != nullptr;
    if (!stream_) {
        auto c = co_await connect();
        if (!c) co_return c.error();
    }
    bool nothing_received = false;
    auto res = co_await exchange(target, token, nothing_received);
    if (res || !reused || !nothing_received || res.error().code == errc::cancelled ||
        res.error().code == errc::timeout) {
        if (!res) stream_.reset();
        co_return res;
    }
    // A kept-alive connection the server had already closed: the request never
    // reached it, so sending it again on a fresh connection is safe.
    stream_.reset();
    auto c = co_await connect();
    if (!c) co_return c.error();
    res = co_await exchange(target, token, nothing_received);
    if (!res) stream_.reset();
    co_return res;
}

net::awaitable<void> connection::shutdown() {
    if (!stream_) co_return;
    beast::get_lowest_layer(*stream_).expires_after(std::chrono::seconds(2));
    // A server that closes without its own close_notify gives stream_truncated
    // here; after a complete response that is harmless, so the result is ignored.
    auto [ec] = co_await stream_->async_shutdown(use_tuple);
    (void)ec;
    stream_.reset();
}

}  // namespace isync::http
