// The incident-sim command line's link and refusal flags (good values land in
// server_options, bad ones give errc::usage naming the flag), and the stats
// JSON it prints at exit.

#include "fake_api/sim_options.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fake_api::app_refusal;
using isync::test::contains;

constexpr std::int64_t now_ms = 1674259200000;

isync::result<fake_api::sim_options> parse(const std::vector<std::string>& args) {
    const std::vector<std::string_view> views(args.begin(), args.end());
    return fake_api::parse_sim_args(views, now_ms);
}

// Fails with errc::usage and a message containing `needle`.
::testing::AssertionResult usage_error(const std::vector<std::string>& args, std::string_view needle) {
    const auto r = parse(args);
    if (r) return ::testing::AssertionFailure() << "parsed, but a usage error was expected";
    if (r.error().code != isync::errc::usage)
        return ::testing::AssertionFailure()
               << "error code " << static_cast<int>(r.error().code) << ", not errc::usage: " << r.error().message;
    return contains(r.error().message, needle);
}

TEST(SimOptions, LeavesTheLinkTransparentByDefault) {
    const auto o = parse({});
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->server.link.latency, 0ms);
    EXPECT_EQ(o->server.link.latency_jitter, 0ms);
    EXPECT_EQ(o->server.link.max_in_flight, 0u);
    EXPECT_EQ(o->server.link.retry_after_seconds, 1u);
    EXPECT_TRUE(o->server.link.compression);
    EXPECT_TRUE(o->server.refused_app_ids.empty());
    EXPECT_TRUE(o->stats_file.empty());
}

TEST(SimOptions, ParsesTheLinkFlags) {
    const auto o = parse({"--latency", "100ms", "--latency-jitter", "2s", "--max-in-flight", "8",
                          "--retry-after-seconds", "5", "--stats-file", "/tmp/sim-stats.json"});
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->server.link.latency, 100ms);
    EXPECT_EQ(o->server.link.latency_jitter, 2s);
    EXPECT_EQ(o->server.link.max_in_flight, 8u);
    EXPECT_EQ(o->server.link.retry_after_seconds, 5u);
    EXPECT_EQ(o->server.faults.retry_after_seconds, 5u) << "--rate-limit-every's 429s say the same";
    EXPECT_EQ(o->stats_file, "/tmp/sim-stats.json");
    EXPECT_TRUE(o->server.link.compression);
}

TEST(SimOptions, NoGzipTakesNoValue) {
    const auto o = parse({"--no-gzip", "--incidents", "7"});
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_FALSE(o->server.link.compression);
    EXPECT_EQ(o->server.data.incidents, 7u) << "the next flag is not eaten as a value";
    const auto last = parse({"--incidents", "7", "--no-gzip"});
    ASSERT_TRUE(last) << last.error().message;
    EXPECT_FALSE(last->server.link.compression);
}

TEST(SimOptions, ParsesRepeatedRefusals) {
    const auto o = parse({"--refuse", "PXone=401", "--refuse", "PXtwo=403", "--refuse", "PXthree=422"});
    ASSERT_TRUE(o) << o.error().message;
    const std::map<std::string, app_refusal> expected{
        {"PXone", app_refusal::unauthorized}, {"PXtwo", app_refusal::forbidden}, {"PXthree", app_refusal::invalid}};
    EXPECT_EQ(o->server.refused_app_ids, expected);
}

TEST(SimOptions, ParsesTheRateLimitAndTheResultWindow) {
    const auto o = parse({"--rate-limit", "150/1m", "--max-result-window", "10000"});
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->server.link.rate_limit, 150u);
    EXPECT_EQ(o->server.link.rate_window, 60s);
    EXPECT_EQ(o->server.max_result_window, 10000u);
    const auto none = parse({});
    ASSERT_TRUE(none);
    EXPECT_EQ(none->server.link.rate_limit, 0u);
    EXPECT_EQ(none->server.max_result_window, 0u);
}

TEST(SimOptions, RejectsBadLinkAndRefusalValuesNamingTheFlag) {
    struct row {
        std::vector<std::string> args;
        std::string needle;
    };
    const std::vector<row> rows{
        {{"--refuse", "PXone"}, "--refuse"},
        {{"--refuse", "=401"}, "--refuse"},
        {{"--refuse", "PXone="}, "--refuse"},
        {{"--refuse", "PXone=500"}, "--refuse: STATUS must be 401, 403 or 422"},
        {{"--refuse", "PXone=200"}, "--refuse"},
        {{"--refuse", "PXone=4O1"}, "--refuse"},
        {{"--refuse", "PXone=401", "--refuse", "PXone=422"}, "--refuse: PXone"},
        {{"--refuse"}, "--refuse"},
        {{"--latency", "100"}, "--latency"},
        {{"--latency", "-5ms"}, "--latency"},
        {{"--latency", "1.5s"}, "--latency"},
        {{"--latency", "2h"}, "--latency"},
        {{"--latency"}, "--latency"},
        {{"--latency-jitter", "abc"}, "--latency-jitter"},
        {{"--latency-jitter", "61m"}, "--latency-jitter"},
        {{"--max-in-flight", "-1"}, "--max-in-flight"},
        {{"--max-in-flight", "two"}, "--max-in-flight"},
        {{"--max-in-flight", "99999999999"}, "--max-in-flight"},
        {{"--retry-after-seconds", "1.5"}, "--retry-after-seconds"},
        {{"--retry-after-seconds", ""}, "--retry-after-seconds"},
        {{"--stats-file"}, "--stats-file"},
        {{"--no-gzip=1"}, "--no-gzip=1"},
        {{"--rate-limit", "150"}, "--rate-limit"},
        {{"--rate-limit", "0/1m"}, "--rate-limit"},
        {{"--rate-limit", "150/0s"}, "--rate-limit"},
        {{"--rate-limit", "150/forever"}, "--rate-limit"},
        {{"--rate-limit", "/1m"}, "--rate-limit"},
        {{"--max-result-window", "-1"}, "--max-result-window"},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(::testing::PrintToString(r.args));
        EXPECT_TRUE(usage_error(r.args, r.needle));
    }
}

TEST(SimOptions, UsageDocumentsEveryNewFlag) {
    const auto text = fake_api::sim_usage();
    for (const char* flag : {"--refuse APPID=STATUS", "--latency D", "--latency-jitter D", "--max-in-flight N",
                             "--retry-after-seconds S", "--no-gzip", "--stats-file PATH", "Invalid appId",
                             "--rate-limit N/D", "--max-result-window N", "rate_limited_429"})
        EXPECT_TRUE(contains(text, flag));
}

TEST(SimStatsJson, IsOneLineWithEveryCounter) {
    fake_api::server_stats st;
    st.requests = 11;
    st.status_counts = {{200, 7}, {422, 1}, {429, 3}};
    st.bytes_sent = 12345;
    st.body_bytes_uncompressed = 67890;
    st.peak_in_flight = 4;
    st.refused_429 = 2;
    st.rate_limited_429 = 1;
    st.connections_accepted = 5;
    st.incidents_served = 700;
    st.account_settings_requests = 9;
    const auto json = fake_api::sim_stats_json(st);
    EXPECT_EQ(json.find('\n'), std::string::npos);

    rapidjson::Document doc;
    doc.Parse(json.c_str(), json.size());
    ASSERT_FALSE(doc.HasParseError()) << json;
    ASSERT_TRUE(doc.IsObject()) << json;
    EXPECT_EQ(doc["requests"].GetUint64(), 11u);
    EXPECT_EQ(doc["bytes_sent"].GetUint64(), 12345u);
    EXPECT_EQ(doc["body_bytes_uncompressed"].GetUint64(), 67890u);
    EXPECT_EQ(doc["peak_in_flight"].GetUint64(), 4u);
    EXPECT_EQ(doc["refused_429"].GetUint64(), 2u);
    EXPECT_EQ(doc["rate_limited_429"].GetUint64(), 1u);
    EXPECT_EQ(doc["connections_accepted"].GetUint64(), 5u);
    EXPECT_EQ(doc["incidents_served"].GetUint64(), 700u);
    EXPECT_EQ(doc["account_settings_requests"].GetUint64(), 9u);
    const auto& counts = doc["status_counts"];
    ASSERT_TRUE(counts.IsObject());
    EXPECT_EQ(counts.MemberCount(), 3u);
    EXPECT_EQ(counts["200"].GetUint64(), 7u);
    EXPECT_EQ(counts["422"].GetUint64(), 1u);
    EXPECT_EQ(counts["429"].GetUint64(), 3u);
}

}  // namespace
