// The HTTPS client against servers that misbehave at the byte level: each
// case ends within its limit with a clear error, and memory stays bounded
// because the limits stop reading, not the server.
#include "api/outcome.hpp"
#include "http/connection.hpp"
#include "http/tls_context.hpp"
#include "support/hostile_server.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fstream>

namespace {

isync::result<isync::http::response> get_from(test_support::hostile_server& server, std::uint64_t body_limit) {
    isync::test::temp_dir dir;
    std::ofstream(dir.file("ca.pem")) << server.ca_pem();
    auto tls = isync::http::make_tls_context({dir.file("ca.pem"), false}).value();
    isync::http::connection_options options;
    options.endpoint = {"127.0.0.1", server.port(), ""};
    options.timeout = std::chrono::seconds(10);
    options.body_limit = body_limit;
    boost::asio::io_context ioc(1);
    isync::http::connection conn(ioc.get_executor(), *tls, options);
    std::optional<isync::result<isync::http::response>> out;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> {
            out = co_await conn.get("/v1/incidents?appId=a&tld=b", isync::config::secret("t"));
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    ioc.run();
    return *out;
}

}  // namespace

TEST(HostileNetwork, AMegabyteOfHeadersIsRefusedAtTheHeaderLimit) {
    test_support::hostile_server server(test_support::hostile_scenario::huge_headers);
    auto r = get_from(server, 64ull << 20);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, isync::errc::too_large);
    EXPECT_NE(r.error().message.find("headers exceed 65536 bytes"), std::string::npos) << r.error().message;
}

TEST(HostileNetwork, AnEndlessChunkedBodyIsCutOffAtTheBodyLimit) {
    test_support::hostile_server server(test_support::hostile_scenario::endless_chunked);
    auto r = get_from(server, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, isync::errc::too_large);
    EXPECT_NE(r.error().message.find("api.max_body"), std::string::npos) << r.error().message;
}

TEST(HostileNetwork, AHundredMegabyteBodyIsRefusedWithoutReadingIt) {
    test_support::hostile_server server(test_support::hostile_scenario::huge_body);
    auto r = get_from(server, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, isync::errc::too_large);
    // Content-Length alone exceeds the limit: the client stops at the headers.
    EXPECT_LT(server.bytes_sent(), 100ull << 20);
}

TEST(HostileNetwork, ARedirectIsNotFollowedAndSaysWhatToFix) {
    test_support::hostile_server server(test_support::hostile_scenario::redirect);
    auto r = get_from(server, 1 << 20);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 302u);
    const auto verdict = isync::api::classify_response(r->status, r->body, r->retry_after, 0, std::chrono::seconds(60));
    EXPECT_EQ(verdict.kind, isync::api::outcome_kind::bad_request);  // no retry, no follow
    EXPECT_NE(verdict.message.find("redirects are not followed"), std::string::npos) << verdict.message;
}
