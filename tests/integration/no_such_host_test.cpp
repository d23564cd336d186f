// A base URL whose host does not exist (NXDOMAIN) fails the poll at once:
// errc::no_such_host after one attempt, never retried within the poll, and
// check-config --online says so. The host is under .invalid, which RFC 6761
// reserves: no resolver may answer it. A machine without DNS at all (a CI
// sandbox) answers "try again" or nothing instead; there the tests skip.
#include "http/connection.hpp"
#include "http/tls_context.hpp"
#include "support/daemon_fixture.hpp"
#include "support/sync_harness.hpp"
#include "support/test_support.hpp"
#include "sync/fetcher.hpp"
#include "sync/http_page_source.hpp"

#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

using isync::errc;

constexpr const char* no_such_host = "incident-sync-test.invalid";

// Empty when this machine's resolver says NXDOMAIN (EAI_NONAME) for
// no_such_host; else why the tests cannot say anything here.
std::string no_nxdomain_here() {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(no_such_host, "443", &hints, &found);
    if (found) ::freeaddrinfo(found);
    if (rc == EAI_NONAME) return {};
    if (rc == 0) return std::string("the resolver here answers an address for ") + no_such_host;
    return std::string("the resolver here does not answer NXDOMAIN for ") + no_such_host + " (" + ::gai_strerror(rc) +
           "): no DNS on this machine?";
}

#define SKIP_WITHOUT_NXDOMAIN()                                  \
    do {                                                         \
        if (const auto why = no_nxdomain_here(); !why.empty()) { \
            GTEST_SKIP() << why;                                 \
        }                                                        \
    } while (false)

isync::http::connection_options options_for_missing_host() {
    isync::http::connection_options o;
    o.endpoint = {no_such_host, 443, ""};
    o.timeout = std::chrono::seconds(10);
    return o;
}

}  // namespace

TEST(NoSuchHost, TheConnectionSaysNoSuchHostAndNamesTheKeyToCheck) {
    SKIP_WITHOUT_NXDOMAIN();
    boost::asio::io_context ioc(1);
    auto tls = isync::http::make_tls_context({}).value();
    isync::http::connection conn(ioc.get_executor(), *tls, options_for_missing_host());
    std::optional<isync::result<isync::http::response>> got;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> { got = co_await conn.get("/v1/incidents", isync::config::secret("t")); },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    ioc.run();
    ASSERT_TRUE(got);
    ASSERT_FALSE(*got);
    EXPECT_EQ(got->error().code, errc::no_such_host) << got->error().message;
    EXPECT_TRUE(isync::test::contains(got->error().message, no_such_host));
    EXPECT_TRUE(isync::test::contains(got->error().message, "check api.base_url"));
    EXPECT_EQ(conn.stats().connects, 0u);
}

// Through the engine's real page source and the retry policy: five attempts
// allowed, one made.
TEST(NoSuchHost, FetchingAPageGivesNoSuchHostAfterOneAttempt) {
    SKIP_WITHOUT_NXDOMAIN();
    boost::asio::io_context ioc(1);
    auto tls = isync::http::make_tls_context({}).value();
    const auto options = options_for_missing_host();
    const auto now = [] { return std::int64_t{1'700'000'000'000}; };
    isync::sync::http_page_source source(ioc.get_executor(), *tls, options, isync::config::secret("t"), {},
                                         std::chrono::milliseconds(20), now);
    isync::config::retry_config policy;
    policy.max_attempts = 5;
    policy.base_delay = std::chrono::milliseconds(1);
    policy.max_delay = std::chrono::milliseconds(5);
    const isync::api::backoff backoff(policy, [] { return 0.5; });
    isync::sync::sync_stats stats;
    const isync::sync::fetch_context ctx{source, options.endpoint, backoff, now, stats};
    const isync::api::incidents_query query{{"PXa", "a.example"}, now() - 3'600'000, now(), 0, 50};
    std::optional<isync::result<isync::sync::fetched_page>> got;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> { got = co_await isync::sync::fetch_page_or_body(ctx, query, true); },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    ioc.run();
    ASSERT_TRUE(got);
    ASSERT_FALSE(*got);
    EXPECT_EQ(got->error().code, errc::no_such_host) << got->error().message;
    EXPECT_EQ(stats.requests, 1u);  // one attempt of the five allowed
    EXPECT_EQ(stats.retries, 0u);
    EXPECT_EQ(stats.fetches_failed, 1u);
}

// A whole poll: the pair fails at its first request and says why in
// sync_runs and sync_state; the watermark stays unset.
TEST(NoSuchHost, APollFailsAtItsFirstRequestAndRecordsWhy) {
    SKIP_WITHOUT_NXDOMAIN();
    test_support::harness_options o;
    o.pairs = 1;
    o.max_attempts = 5;
    o.server.data.incidents = 50;
    test_support::sync_harness h(o);
    h.settings().connection.endpoint = {no_such_host, 443, ""};
    EXPECT_FALSE(h.run_once());
    EXPECT_EQ(h.stats().requests, 1u);
    EXPECT_EQ(h.stats().retries, 0u);
    EXPECT_EQ(h.server().stats().requests, 0u);
    SQLite::Statement run(h.db(), "SELECT status, error FROM sync_runs");
    ASSERT_TRUE(run.executeStep());
    EXPECT_EQ(run.getColumn(0).getString(), "failed");
    EXPECT_TRUE(isync::test::contains(run.getColumn(1).getString(), "no such host"));
    EXPECT_FALSE(run.executeStep());
    SQLite::Statement state(h.db(), "SELECT watermark_ms, last_error FROM sync_state");
    ASSERT_TRUE(state.executeStep());
    EXPECT_TRUE(state.getColumn(0).isNull());
    EXPECT_TRUE(isync::test::contains(state.getColumn(1).getString(), no_such_host));
}

// The daemon as a process: check-config --online names the DNS failure for
// every pair; `once` fails without a retry line.
TEST(NoSuchHost, CheckConfigOnlineAndOnceNameTheDnsFailure) {
    SKIP_WITHOUT_NXDOMAIN();
    test_support::daemon_fixture f;
    std::string yaml;
    {
        std::ifstream in(f.config_path());
        std::stringstream text;
        text << in.rdbuf();
        yaml = text.str();
    }
    const std::string real = f.server().base_url();
    const auto at = yaml.find(real);
    ASSERT_NE(at, std::string::npos) << yaml;
    yaml.replace(at, real.size(), std::string("https://") + no_such_host);
    std::ofstream(f.config_path(), std::ios::trunc) << yaml;

    EXPECT_EQ(f.run("check-config", "online", {"--online"}), 1) << f.output("online");
    const std::string online = f.output("online");
    for (const auto& p : f.pairs())
        EXPECT_TRUE(isync::test::contains(
            online, p.app_id + "/" + p.tld + ": FAILED: resolving " + no_such_host + ":443: no such host"));

    EXPECT_EQ(f.run("once", "once"), 1) << f.output("once");
    const std::string once = f.output("once");
    EXPECT_TRUE(isync::test::contains(once, "no such host"));
    EXPECT_EQ(once.find("retrying"), std::string::npos) << once;
    EXPECT_EQ(f.server().stats().requests, 0u);
}
