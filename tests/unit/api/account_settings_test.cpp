#include "api/account_settings.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

using isync::api::application;
using isync::api::discovered_pairs;
using isync::api::parse_account_settings;
using isync::config::pair;
using isync::test::contains;

namespace {

// The vendor's documented example, with its unknown fields.
constexpr std::string_view documented = R"({"applications": [
   {"app_id": "PXabc123", "name": "HUMAN Security", "enabled": true,
    "hostDomains": [{"domain": "example.com", "last_created_baseline": "string"}],
    "csm_enabled": true, "sensor_version": "4.1.1",
    "muvs": {"2022-08": 8698227, "2022-09": 9432064},
    "account_name": "HUMAN Security"}],
 "accountName": "HUMAN Security",
 "alerts": [{"name": "Test 1", "type": "email",
             "notifications": [{"app_id": "PXabc123", "host_domain": "domain1.com",
                                "notification_levels": {"high": true, "low": false, "medium": false}}]}]})";

std::string error_of(std::string_view body) {
    auto parsed = parse_account_settings(body);
    EXPECT_FALSE(parsed) << "parsed: " << body;
    if (parsed) return {};
    EXPECT_EQ(parsed.error().code, isync::errc::parse);
    return parsed.error().message;
}

}  // namespace

TEST(AccountSettings, TheDocumentedExampleParsesAndUnknownFieldsAreIgnored) {
    auto apps = parse_account_settings(documented);
    ASSERT_TRUE(apps) << apps.error().message;
    ASSERT_EQ(apps->size(), 1u);
    EXPECT_EQ((*apps)[0], (application{"PXabc123", "HUMAN Security", true, {"example.com"}}));
}

TEST(AccountSettings, MissingOptionalFieldsTakeTheirMeaning) {
    auto apps = parse_account_settings(
        R"({"applications":[{"app_id":"PXa"},{"app_id":"PXb","enabled":false,"hostDomains":null},)"
        R"({"app_id":"PXc","hostDomains":[{"domain":"a.example"},{"domain":"b.example","x":1}]}]})");
    ASSERT_TRUE(apps) << apps.error().message;
    ASSERT_EQ(apps->size(), 3u);
    EXPECT_EQ((*apps)[0], (application{"PXa", "", true, {}}));  // no `enabled`: on
    EXPECT_EQ((*apps)[1], (application{"PXb", "", false, {}}));
    EXPECT_EQ((*apps)[2], (application{"PXc", "", true, {"a.example", "b.example"}}));
}

TEST(AccountSettings, MissingDocumentedFieldsAreClearErrorsThatNameThePath) {
    EXPECT_TRUE(contains(error_of(R"({"accountName":"x"})"), "no \"applications\""));
    EXPECT_TRUE(contains(error_of(R"({"applications":{}})"), "$.applications: expected an array, found an object"));
    EXPECT_TRUE(
        contains(error_of(R"({"applications":[{"app_id":"PXa"},{"name":"x"}]})"), "$.applications[1]: no \"app_id\""));
    EXPECT_TRUE(contains(error_of(R"({"applications":[{"app_id":7}]})"),
                         "$.applications[0].app_id: expected a non-empty string, found a number"));
    EXPECT_TRUE(contains(error_of(R"({"applications":[{"app_id":""}]})"), "$.applications[0].app_id"));
    EXPECT_TRUE(contains(error_of(R"({"applications":[{"app_id":"PXa","enabled":"yes"}]})"),
                         "$.applications[0].enabled: expected true or false, found a string"));
    EXPECT_TRUE(contains(error_of(R"({"applications":[{"app_id":"PXa","hostDomains":[{"name":"a"}]}]})"),
                         "$.applications[0].hostDomains[0]: no \"domain\""));
    EXPECT_TRUE(contains(error_of(R"({"applications":[{"app_id":"PXa","hostDomains":"a.example"}]})"),
                         "$.applications[0].hostDomains: expected an array"));
    EXPECT_TRUE(contains(error_of(R"([1,2])"), "$: expected an object, found an array"));
    EXPECT_TRUE(contains(error_of(R"({"applications":[{"app_id":"PXa"})"), "not JSON"));
    EXPECT_TRUE(contains(error_of(""), "not JSON"));
}

TEST(AccountSettings, DiscoveredPairsAreEnabledApplicationsTimesDomainsSelectedSortedOnce) {
    const std::vector<application> apps{
        {"PXb", "", true, {"z.example", "a.example"}},
        {"PXoff", "", false, {"off.example"}},
        {"PXa", "", true, {"shop.example", "staging.example", "shop.example"}},
        {"PXnone", "", true, {}},
    };
    EXPECT_EQ(discovered_pairs(apps, {}, {}),
              (std::vector<pair>{
                  {"PXa", "shop.example"}, {"PXa", "staging.example"}, {"PXb", "a.example"}, {"PXb", "z.example"}}));
    EXPECT_EQ(discovered_pairs(apps, {"PXa/*", "PXoff/*"}, {"*/staging.*"}),
              (std::vector<pair>{{"PXa", "shop.example"}}));
    EXPECT_EQ(discovered_pairs(apps, {}, {"*/*"}), std::vector<pair>{});
}

TEST(AccountSettings, TheTargetKeepsTheBaseUrlsPrefix) {
    isync::config::endpoint ep{"api.example", 443, "/gw"};
    EXPECT_EQ(isync::api::account_settings_target(ep), "/gw/v1/account-settings");
}
