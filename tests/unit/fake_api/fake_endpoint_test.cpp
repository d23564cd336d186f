// The fake API's per-appId refusals, as the pure endpoint answers them: each
// status with its own body, after the token check, while other appIds are served.

#include "fake_api/dataset.hpp"
#include "fake_api/endpoint.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using fake_api::app_refusal;

constexpr std::int64_t start_ms = 1674259200000;
constexpr std::int64_t day_ms = 86'400'000;
const std::string window = "&from=" + std::to_string(start_ms) + "&to=" + std::to_string(start_ms + day_ms);

const fake_api::dataset& two_pairs() {
    static const fake_api::dataset d({.seed = 3,
                                      .incidents = 40,
                                      .pairs = fake_api::sim_pairs(2),
                                      .start_ms = start_ms,
                                      .end_ms = start_ms + day_ms});
    return d;
}

fake_api::reply get(const std::string& query, const fake_api::endpoint_config& config,
                    const std::string& authorization = "Bearer test-token") {
    return fake_api::handle_request("GET", "/v1/incidents?" + query + window, authorization, two_pairs(), config,
                                    start_ms + day_ms);
}

fake_api::endpoint_config refusing() {
    return {.refused_app_ids = {{"PXsim001", app_refusal::forbidden},
                                {"PXbad", app_refusal::invalid},
                                {"PXscoped", app_refusal::unauthorized}}};
}

TEST(FakeEndpoint, RefusesEachAppIdWithItsStatusAndMessage) {
    const auto config = refusing();
    const auto forbidden = get("appId=PXsim001&tld=site001.example", config);
    EXPECT_EQ(forbidden.status, 403u);
    EXPECT_EQ(forbidden.body, R"({"message":"Forbidden"})");
    const auto invalid = get("appId=PXbad&tld=site000.example", config);
    EXPECT_EQ(invalid.status, 422u);
    EXPECT_EQ(invalid.body, R"({"message":"Invalid appId PXbad"})");
    const auto unauthorized = get("appId=PXscoped&tld=site000.example", config);
    EXPECT_EQ(unauthorized.status, 401u);
    EXPECT_EQ(unauthorized.body, R"({"message":"Unauthorized"})");
    EXPECT_EQ(forbidden.incidents + invalid.incidents + unauthorized.incidents, 0u);
}

TEST(FakeEndpoint, ServesTheAppIdsThatAreNotRefused) {
    const auto served = get("appId=PXsim000&tld=site000.example&take=100", refusing());
    EXPECT_EQ(served.status, 200u) << served.body;
    EXPECT_GT(served.incidents, 0u);
    const auto unrefused = get("appId=PXsim001&tld=site001.example&take=100", {});
    EXPECT_EQ(unrefused.status, 200u) << "the same request without the refusal";
    EXPECT_GT(unrefused.incidents, 0u);
}

TEST(FakeEndpoint, RefusesAQueryNamingAnyRefusedAppId) {
    const auto mixed = get("appId=PXsim000&appId=PXsim001&tld=site000.example&tld=site001.example", refusing());
    EXPECT_EQ(mixed.status, 403u);
    EXPECT_EQ(mixed.incidents, 0u) << "nothing of the allowed appId leaks";
}

TEST(FakeEndpoint, ChecksTheTokenAndParametersBeforeTheRefusal) {
    const auto config = refusing();
    const auto wrong_token = get("appId=PXbad&tld=site000.example", config, "Bearer wrong");
    EXPECT_EQ(wrong_token.status, 401u);
    EXPECT_EQ(wrong_token.body, R"({"message":"Unauthorized"})");
    const auto bad_take = get("appId=PXsim001&tld=site001.example&take=x", config);
    EXPECT_EQ(bad_take.status, 422u);
    EXPECT_EQ(bad_take.body, R"({"message":"\"take\" must be a non-negative integer"})");
}

TEST(FakeEndpoint, RefusalBodiesEscapeTheAppId) {
    const auto r = fake_api::refusal_reply(R"(PX"odd\)", app_refusal::invalid);
    EXPECT_EQ(r.status, 422u);
    EXPECT_EQ(r.body, R"({"message":"Invalid appId PX\"odd\\"})");
}

}  // namespace

// A search backend's bound on paging depth: skip + take up to the bound is
// served, one past it is refused with 400 and Elasticsearch's words.
TEST(FakeEndpoint, RefusesAPageReachingPastTheResultWindow) {
    const fake_api::endpoint_config config{.max_result_window = 30};
    const auto last_allowed = get("appId=PXsim000&tld=site000.example&skip=20&take=10", config);
    EXPECT_EQ(last_allowed.status, 200u) << last_allowed.body;
    const auto past = get("appId=PXsim000&tld=site000.example&skip=21&take=10", config);
    EXPECT_EQ(past.status, 400u);
    EXPECT_EQ(past.body, R"({"message":"Result window is too large, from + size must be less than or equal to: [30] )"
                         R"(but was [31]"})");
    const auto unbounded = get("appId=PXsim000&tld=site000.example&skip=21&take=10", fake_api::endpoint_config{});
    EXPECT_EQ(unbounded.status, 200u);
}
