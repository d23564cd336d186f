// http_page_source against the fake API on loopback: a request the walk gives
// up (the page is no longer wanted) still occupies a place at a server that
// limits requests in flight until the server has answered it, so its place
// here is freed only then; else the next request, on a new connection, finds
// the server's limit full and gets a 429 that pauses every pair.

#include "sync/http_page_source.hpp"
#include "http/tls_context.hpp"

#include "fake_api/server.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
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

// The fake API with `link`, and a page source for it on `ioc` with at most
// `max_in_flight` of its own.
struct source_fixture {
    fake_api::server server;
    net::io_context ioc{1};
    std::shared_ptr<net::ssl::context> tls;
    std::optional<isync::sync::http_page_source> source;
    std::string target;

    source_fixture(fake_api::link_options link, int max_in_flight)
        : server(fake_api::server_options{
              .data = {.seed = 5, .incidents = 120, .start_ms = start_ms, .end_ms = start_ms + day_ms}, .link = link}) {
        isync::test::temp_dir dir;
        server.write_ca_file(dir.file("ca.pem"));
        tls = isync::http::make_tls_context({dir.file("ca.pem"), false}).value();
        isync::http::connection_options connection;
        connection.endpoint = {"127.0.0.1", server.port(), ""};
        connection.timeout = 10s;
        source.emplace(ioc.get_executor(), *tls, connection, isync::config::secret(server.token()),
                       isync::sync::concurrency_settings{.initial = max_in_flight, .min = 1, .max = max_in_flight}, 2s,
                       [] { return start_ms + day_ms; });
        target = "/v1/incidents?appId=PXsim000&tld=site000.example&from=" + std::to_string(start_ms) +
                 "&to=" + std::to_string(start_ms + day_ms) + "&take=10&skip=0";
    }
};

// Sends a request and gives it up (terminal cancellation) once the server
// holds it; returns when the request's get() has returned. Whether the
// server was reached within 2 s lands in `reached_server`.
net::awaitable<void> give_up_once_the_server_has_it(source_fixture& f, bool& reached_server) {
    bool returned = false;
    net::cancellation_signal give_up;
    const auto abandoned = [&]() -> net::awaitable<void> {
        (void)co_await f.source->get(f.target);
        returned = true;
    };
    net::co_spawn(f.ioc, abandoned(), net::bind_cancellation_slot(give_up.slot(), net::detached));
    net::steady_timer poll(f.ioc);
    for (int i = 0; i < 2000 && !(reached_server = f.server.stats().in_flight == 1); ++i) {
        poll.expires_after(1ms);
        co_await poll.async_wait(net::use_awaitable);
    }
    give_up.emit(net::cancellation_type::terminal);
    for (int i = 0; i < 2000 && !returned; ++i) {
        poll.expires_after(1ms);
        co_await poll.async_wait(net::use_awaitable);
    }
}

// A request given up while the server has it keeps its place until the server
// has answered (the next one must not find the server's limit full), and goes
// on to that answer on its own: its connection is not closed under a pending
// answer but serves the next request (no new TCP and TLS handshake, a round
// trip or two on a distant link).
TEST(HttpPageSource, ARequestGivenUpHoldsItsPlaceUntilTheServerHasAnsweredItAndKeepsItsConnection) {
    source_fixture f({.latency = 300ms, .max_in_flight = 1}, 1);
    auto& server = f.server;
    auto& ioc = f.ioc;
    auto& source = *f.source;
    const std::string& target = f.target;

    unsigned first = 0, after = 0;
    bool given_up_reached_server = false;
    const auto test = [&]() -> net::awaitable<void> {
        // A first answer: the source learns the round trip (about 300 ms).
        auto r1 = co_await source.get(target);
        first = r1 ? r1->status : 0;
        co_await give_up_once_the_server_has_it(f, given_up_reached_server);
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
    EXPECT_EQ(source.stats().connects, 1u) << "the connection of the request given up was closed, not reused";
}

// At a stop, or the end of a single pass, nothing more will be asked: the
// places still held for requests given up are freed at once, so the event
// loop does not wait out a round trip before the process can exit.
TEST(HttpPageSource, WhenNothingMoreWillBeAskedTheHeldPlacesAreFreedAtOnce) {
    source_fixture f({.latency = 500ms}, 2);
    auto& ioc = f.ioc;
    auto& source = *f.source;
    const std::string& target = f.target;

    int held_after_giving_up = -1, held_after_forgetting = -1;
    bool given_up_reached_server = false;
    const auto test = [&]() -> net::awaitable<void> {
        (void)co_await source.get(target);
        co_await give_up_once_the_server_has_it(f, given_up_reached_server);
        held_after_giving_up = source.stats().in_flight;  // still the server's, until it answers
        source.forget_given_up_requests();
        held_after_forgetting = source.stats().in_flight;
    };
    net::co_spawn(ioc, test(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ioc.run();

    ASSERT_TRUE(given_up_reached_server);
    EXPECT_EQ(held_after_giving_up, 1) << "the place of the request given up was not held";
    EXPECT_EQ(held_after_forgetting, 0) << "the held place was not freed at once";
}

// A source destroyed (a reload, or the end of a pass) while a request given
// up is still with the server stops that exchange: the loop ends without
// waiting for the answer, and nothing of the source is touched after it is
// gone (the ASan build checks that).
TEST(HttpPageSource, DestroyingTheSourceStopsTheRequestsGivenUp) {
    source_fixture f({.latency = 5s}, 2);
    bool given_up_reached_server = false;
    const auto test = [&]() -> net::awaitable<void> {
        co_await give_up_once_the_server_has_it(f, given_up_reached_server);
        f.source.reset();
    };
    net::co_spawn(f.ioc, test(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    const auto started = std::chrono::steady_clock::now();
    f.ioc.run();
    const auto took = std::chrono::steady_clock::now() - started;

    ASSERT_TRUE(given_up_reached_server);
    EXPECT_LT(took, 4s) << "the loop waited for the answer to a request given up by a source that is gone";
}

}  // namespace
