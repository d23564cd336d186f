// http_page_source against the fake API on loopback: a request the walk gives
// up (the page is no longer wanted) still occupies a place at a server that
// limits requests in flight until the server has answered it, so its place
// here is freed only then; else the next request, on a new connection, finds
// the server's limit full and gets a 429 that pauses every pair.

#include "sync/http_page_source.hpp"
#include "http/tls_context.hpp"

#include "fake_api/server.hpp"

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

constexpr std::int64_t start_ms = 1'700'000'000'000;
constexpr std::int64_t day_ms = 86'400'000;

TEST(HttpPageSource, ARequestGivenUpHoldsItsPlaceUntilTheServerHasAnsweredIt) {
    fake_api::server_options o{
        .data = {.seed = 5, .incidents = 120, .start_ms = start_ms, .end_ms = start_ms + day_ms}};
    o.link.max_in_flight = 1;
    o.link.latency = 300ms;
    fake_api::server server(o);

    net::io_context ioc(1);
    isync::http::tls_options tls_options;
    const auto ca = std::filesystem::temp_directory_path() / ("isync-page-source-ca-" + std::to_string(::getpid()));
    server.write_ca_file(ca);
    tls_options.ca_file = ca.string();
    auto tls = isync::http::make_tls_context(tls_options).value();
    std::filesystem::remove(ca);
    isync::http::connection_options connection;
    connection.endpoint = {"127.0.0.1", server.port(), ""};
    connection.timeout = 10s;
    isync::sync::http_page_source source(ioc.get_executor(), *tls, connection, isync::config::secret(server.token()),
                                         {.initial = 1, .min = 1, .max = 1}, 2s, [] { return start_ms + day_ms; });
    const std::string target = "/v1/incidents?appId=PXsim000&tld=site000.example&from=" + std::to_string(start_ms) +
                               "&to=" + std::to_string(start_ms + day_ms) + "&take=10&skip=0";

    unsigned first = 0, after = 0;
    bool given_up_reached_server = false;
    net::cancellation_signal give_up;
    const auto test = [&]() -> net::awaitable<void> {
        // A first answer: the source learns the round trip (about 300 ms).
        auto r1 = co_await source.get(target);
        first = r1 ? r1->status : 0;
        // A second request, given up once the server holds it.
        const auto abandoned = [&]() -> net::awaitable<void> { (void)co_await source.get(target); };
        net::co_spawn(ioc, abandoned(), net::bind_cancellation_slot(give_up.slot(), net::detached));
        net::steady_timer poll(ioc);
        for (int i = 0; i < 2000 && !given_up_reached_server; ++i) {
            given_up_reached_server = server.stats().in_flight == 1;
            poll.expires_after(1ms);
            co_await poll.async_wait(net::use_awaitable);
        }
        give_up.emit(net::cancellation_type::terminal);
        // The next request: the server still holds the one given up.
        auto r3 = co_await source.get(target);
        after = r3 ? r3->status : 0;
    };
    net::co_spawn(ioc, test(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ioc.run();

    ASSERT_TRUE(given_up_reached_server) << "the second request never reached the server";
    EXPECT_EQ(first, 200u);
    EXPECT_EQ(after, 200u) << "the request after the one given up was refused (429: the server's limit was full)";
    EXPECT_EQ(server.stats().refused_429, 0u);
    EXPECT_LE(server.stats().peak_in_flight, 1u);
}

}  // namespace
