// The HTTPS client against the fake API over real TLS on 127.0.0.1.
#include "fake_api/server.hpp"
#include "http/connection.hpp"
#include "http/tls_context.hpp"
#include "support/connect_proxy.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <string>

namespace {

using isync::errc;
using isync::http::connection;
using isync::http::connection_options;
using isync::http::response;

const std::string target = "/v1/incidents?appId=PXsim000&tld=site000.example&from=0&to=99999999999999&skip=0&take=10";

struct client_fixture {
    isync::test::temp_dir dir;
    fake_api::server server;
    std::shared_ptr<boost::asio::ssl::context> tls;
    connection_options options;

    explicit client_fixture(fake_api::server_options so = {}) : server(std::move(so)) {
        server.write_ca_file(dir.file("ca.pem"));
        tls = isync::http::make_tls_context({dir.file("ca.pem"), false}).value();
        options.endpoint = {"127.0.0.1", server.port(), ""};
        options.timeout = std::chrono::seconds(5);
    }

    // Runs `requests` GETs over one connection; returns every result.
    std::vector<isync::result<response>> get(int requests = 1, std::string token = "test-token") {
        boost::asio::io_context ioc(1);
        connection conn(ioc.get_executor(), *tls, options);
        std::vector<isync::result<response>> out;
        boost::asio::co_spawn(
            ioc,
            [&]() -> boost::asio::awaitable<void> {
                for (int i = 0; i < requests; ++i)
                    out.push_back(co_await conn.get(target, isync::config::secret(token)));
                co_await conn.shutdown();
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        ioc.run();
        connects = conn.stats().connects;
        return out;
    }
    std::uint64_t connects = 0;
};

fake_api::server_options with_certificate(fake_api::server_certificate cert) {
    fake_api::server_options so;
    so.tls.certificate = cert;
    return so;
}

std::string failure_text(const std::vector<isync::result<response>>& results) {
    return results.at(0) ? std::string("(succeeded)") : results.at(0).error().message;
}

}  // namespace

TEST(HttpsClient, ReusesOneConnectionForEveryRequest) {
    client_fixture f;
    auto results = f.get(5);
    for (const auto& r : results) {
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->status, 200u);
        EXPECT_EQ(r->content_type.substr(0, 16), "application/json");
    }
    EXPECT_EQ(f.server.stats().connections_accepted, 1u);
    EXPECT_EQ(f.connects, 1u);
}

TEST(HttpsClient, ReplacesAConnectionTheServerDroppedWithoutTheCallerNoticing) {
    fake_api::server_options so;
    so.faults.reset_every_kth = 2;  // the second request's connection is reset before any answer
    client_fixture f(so);
    auto results = f.get(2);
    ASSERT_TRUE(results[0]);
    ASSERT_TRUE(results[1]) << results[1].error().message;
    EXPECT_EQ(f.connects, 2u);
    EXPECT_EQ(f.server.stats().resets, 1u);
}

TEST(HttpsClient, RefusesACertificateFromAnUnknownCa) {
    client_fixture f(with_certificate(fake_api::server_certificate::unknown_ca));
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_EQ(results[0].error().code, errc::tls_refused);  // not retried within a poll
    EXPECT_NE(failure_text(results).find("unknown CA"), std::string::npos) << failure_text(results);
}

TEST(HttpsClient, RefusesASelfSignedCertificate) {
    client_fixture f(with_certificate(fake_api::server_certificate::self_signed));
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_NE(failure_text(results).find("self-signed"), std::string::npos) << failure_text(results);
}

TEST(HttpsClient, RefusesAnExpiredCertificate) {
    client_fixture f(with_certificate(fake_api::server_certificate::expired));
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_NE(failure_text(results).find("expired"), std::string::npos) << failure_text(results);
}

TEST(HttpsClient, RefusesACertificateForAnotherHost) {
    client_fixture f(with_certificate(fake_api::server_certificate::wrong_host));
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_NE(failure_text(results).find("not valid for host \"127.0.0.1\""), std::string::npos)
        << failure_text(results);
}

namespace {

// OpenSSL's own verdict on a handshake with `server` by a client that offers
// only TLS 1.0 and 1.1 and verifies the certificate against `ca_file`: empty
// when it succeeds, else the reason. It tells "the server speaks TLS 1.1
// only" apart from "this OpenSSL cannot speak TLS 1.1 at all".
std::string tls11_handshake_failure(const fake_api::server& server, const std::string& ca_file) {
    namespace net = boost::asio;
    namespace ssl = boost::asio::ssl;
    net::io_context ioc(1);
    ssl::context ctx(ssl::context::tls_client);
    SSL_CTX* native = ctx.native_handle();
    // As the fake server does: OpenSSL 3 speaks TLS 1.0/1.1 only at security level 0.
    SSL_CTX_set_security_level(native, 0);
    SSL_CTX_set_cipher_list(native, "DEFAULT:@SECLEVEL=0");
    if (!SSL_CTX_set_min_proto_version(native, TLS1_VERSION) || !SSL_CTX_set_max_proto_version(native, TLS1_1_VERSION))
        return "OpenSSL refused the version range TLS 1.0-1.1";
    ctx.load_verify_file(ca_file);
    ctx.set_verify_mode(ssl::verify_peer);
    ssl::stream<boost::beast::tcp_stream> stream(ioc, ctx);
    auto& tcp_layer = boost::beast::get_lowest_layer(stream);
    boost::system::error_code outcome = net::error::would_block;
    tcp_layer.expires_after(std::chrono::seconds(10));
    tcp_layer.async_connect(
        net::ip::tcp::endpoint(net::ip::address_v4::loopback(), server.port()), [&](boost::system::error_code ec) {
            if (ec) {
                outcome = ec;
                return;
            }
            tcp_layer.expires_after(std::chrono::seconds(10));
            stream.async_handshake(ssl::stream_base::client, [&](boost::system::error_code hec) { outcome = hec; });
        });
    ioc.run();
    return outcome ? outcome.message() : std::string();
}

}  // namespace

TEST(HttpsClient, RefusesAServerThatOffersOnlyTls11) {
    fake_api::server_options so;
    so.tls.min_version = fake_api::tls_version::tls1_0;
    so.tls.max_version = fake_api::tls_version::tls1_1;
    client_fixture f(so);
    // The same server, certificate and CA with a client that accepts TLS 1.1:
    // the handshake must succeed, or the refusal below would prove nothing
    // about the protocol version.
    if (const auto why = tls11_handshake_failure(f.server, f.dir.file("ca.pem")); !why.empty())
        GTEST_SKIP() << "this OpenSSL cannot complete a TLS 1.1 handshake (no TLS 1.1 in the build, or a policy "
                        "forbids it), so a refused handshake would not show the version is why: "
                     << why;
    f.server.reset_stats();

    auto results = f.get();
    ASSERT_FALSE(results[0]);
    const auto text = failure_text(results);
    EXPECT_TRUE(isync::test::contains(text, "TLS handshake with 127.0.0.1:"));
    // OpenSSL's reason names the version: the server answers a TLS 1.2+ hello
    // with a protocol_version alert ("tlsv1 alert protocol version"); a server
    // that chose TLS 1.1 anyway would get "unsupported protocol" or "wrong
    // version number" from the client. Any other reason (a certificate, a
    // reset) is not this refusal.
    EXPECT_TRUE(text.find("alert protocol version") != std::string::npos ||
                text.find("unsupported protocol") != std::string::npos ||
                text.find("wrong version number") != std::string::npos)
        << text;
    // The server saw the same: one failed handshake, and no request.
    EXPECT_TRUE(
        f.server.wait_for([](const auto& st) { return st.tls_handshake_failures == 1; }, std::chrono::seconds(10)))
        << f.server.stats().tls_handshake_failures << " failed handshakes";
    EXPECT_EQ(f.server.stats().requests, 0u);
}

TEST(HttpsClient, SendsSniForHostNamesOnly) {
    client_fixture f;
    f.options.endpoint.host = "localhost";
    ASSERT_TRUE(f.get()[0]);
    f.options.endpoint.host = "127.0.0.1";
    ASSERT_TRUE(f.get()[0]);
    const auto names = f.server.stats().server_names;
    ASSERT_EQ(names.size(), 2u);
    EXPECT_EQ(names[0], "localhost");
    EXPECT_EQ(names[1], "");  // RFC 6066: no SNI for an IP literal
}

TEST(HttpsClient, RefusesABodyOverTheLimit) {
    client_fixture f;
    f.options.body_limit = 1000;  // a page of 10 incidents is ~13 KB
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_EQ(results[0].error().code, errc::too_large);
    EXPECT_NE(failure_text(results).find("api.max_body (1000 bytes)"), std::string::npos) << failure_text(results);
}

TEST(HttpsClient, CutsOffASilentServerAtTheDeadline) {
    fake_api::server_options so;
    so.faults.never_answer = true;
    client_fixture f(so);
    f.options.timeout = std::chrono::milliseconds(300);
    const auto start = std::chrono::steady_clock::now();
    auto results = f.get();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(results[0]);
    EXPECT_EQ(results[0].error().code, errc::timeout);
    EXPECT_GE(elapsed, std::chrono::milliseconds(300));
    EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(HttpsClient, CutsOffASlowServerAtTheDeadline) {
    fake_api::server_options so;
    so.faults.delay = std::chrono::seconds(5);
    client_fixture f(so);
    f.options.timeout = std::chrono::milliseconds(300);
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_EQ(results[0].error().code, errc::timeout);
}

TEST(HttpsClient, TunnelsThroughAConnectProxy) {
    client_fixture f;
    test_support::connect_proxy proxy;
    f.options.proxy = isync::http::proxy_endpoint{"127.0.0.1", proxy.port()};
    auto results = f.get(3);
    for (const auto& r : results) ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(proxy.tunnels(), 1u);  // keep-alive through the tunnel too
    ASSERT_EQ(proxy.authorities().size(), 1u);
    EXPECT_EQ(proxy.authorities()[0], "127.0.0.1:" + std::to_string(f.server.port()));
}

TEST(HttpsClient, SendsBasicCredentialsToAnAuthenticatingProxy) {
    client_fixture f;
    test_support::connect_proxy proxy;
    // RFC 7617's example: "Aladdin:open sesame".
    proxy.require_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    f.options.proxy =
        isync::http::proxy_endpoint{"127.0.0.1", proxy.port(), "Aladdin", isync::config::secret("open sesame")};
    auto results = f.get(2);
    for (const auto& r : results) ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(proxy.tunnels(), 1u);
    EXPECT_EQ(proxy.refused_407(), 0u);
}

TEST(HttpsClient, SaysWhatToDoWhenTheProxyWantsCredentials) {
    client_fixture f;
    test_support::connect_proxy proxy;
    proxy.require_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    f.options.proxy = isync::http::proxy_endpoint{"127.0.0.1", proxy.port()};
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_EQ(results[0].error().code, errc::proxy_refused);
    EXPECT_NE(failure_text(results).find("asks for credentials (HTTP 407"), std::string::npos) << failure_text(results);
    EXPECT_NE(failure_text(results).find("api.proxy_password_file"), std::string::npos) << failure_text(results);
    ASSERT_EQ(proxy.authorizations().size(), 1u);
    EXPECT_EQ(proxy.authorizations()[0], "");  // none sent without a user
}

TEST(HttpsClient, ARefusedProxyPasswordIsNamedButNeverShown) {
    client_fixture f;
    test_support::connect_proxy proxy;
    proxy.require_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    f.options.proxy =
        isync::http::proxy_endpoint{"127.0.0.1", proxy.port(), "Aladdin", isync::config::secret("WRONG-canary-3c")};
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_EQ(results[0].error().code, errc::proxy_refused);
    const auto text = failure_text(results);
    EXPECT_NE(text.find("refused the credentials of user \"Aladdin\""), std::string::npos) << text;
    EXPECT_EQ(text.find("WRONG-canary-3c"), std::string::npos) << text;
    EXPECT_EQ(proxy.refused_407(), 1u);
}

TEST(HttpsClient, ReportsAProxyThatRefusesTheTunnel) {
    client_fixture f;
    test_support::connect_proxy proxy;
    f.options.endpoint.host = "127.0.0.2";  // the test proxy only tunnels to 127.0.0.1/localhost
    f.options.proxy = isync::http::proxy_endpoint{"127.0.0.1", proxy.port()};
    auto results = f.get();
    ASSERT_FALSE(results[0]);
    EXPECT_NE(failure_text(results).find("refused to tunnel"), std::string::npos) << failure_text(results);
}
