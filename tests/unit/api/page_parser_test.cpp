#include "api/page_parser.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <string>

using isync::errc;
using isync::api::parse_page;
using isync::test::contains;
using isync::test::documented_example_incident;
using isync::test::documented_example_incident_json;
using isync::test::page_body;

namespace {

// The parse of a body that should be refused, run in a child process: a crash
// inside the parser (an assertion, a stack overflow) becomes a test failure
// instead of killing every other test in the binary.
struct refusal {
    bool crashed = false;
    std::string how;
    bool refused = false;
    int code = -1;
    std::string message;
};

refusal parse_expecting_refusal(const std::string& body) {
    const auto run = isync::test::run_isolated([&](std::string& out) {
        auto r = parse_page(body);
        if (r.has_value()) {
            out = "accepted";
            return;
        }
        out = "refused " + std::to_string(static_cast<int>(r.error().code)) + " " + r.error().message;
    });
    refusal out;
    out.crashed = run.crashed;
    out.how = run.how;
    if (run.output.rfind("refused ", 0) == 0) {
        out.refused = true;
        const auto space = run.output.find(' ', 8);
        out.code = std::stoi(run.output.substr(8, space - 8));
        out.message = run.output.substr(space + 1);
    }
    return out;
}

#define EXPECT_REFUSED_WITH(body, needle)                                       \
    do {                                                                        \
        const refusal r_ = parse_expecting_refusal(body);                       \
        ASSERT_FALSE(r_.crashed) << "parse_page crashed: " << r_.how;           \
        ASSERT_TRUE(r_.refused) << "parse_page accepted a body it must refuse"; \
        EXPECT_EQ(r_.code, static_cast<int>(errc::parse));                      \
        EXPECT_TRUE(contains(r_.message, needle));                              \
    } while (false)

isync::model::incident parse_one(const std::string& incident_json) {
    auto page = parse_page(page_body(1, {incident_json}));
    if (!page) throw std::runtime_error(page.error().message);
    if (page->incidents.size() != 1) throw std::runtime_error("expected one incident");
    return page->incidents.front();
}

}  // namespace

TEST(PageParser, ParsesEveryFieldOfTheDocumentedExample) {
    const std::string json = documented_example_incident_json();
    auto page = parse_page(page_body(1000, {json}));
    ASSERT_TRUE(page.has_value()) << page.error().message;
    EXPECT_EQ(page->count, 1000);
    ASSERT_EQ(page->incidents.size(), 1u);
    const auto& got = page->incidents[0];
    const auto want = documented_example_incident();

    // Field by field first, so a failure says which field.
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.app_id, want.app_id);
    EXPECT_EQ(got.host_domain, want.host_domain);
    EXPECT_EQ(got.category, want.category);
    EXPECT_EQ(got.title, want.title);
    EXPECT_EQ(got.details, want.details);
    EXPECT_EQ(got.initiator, want.initiator);
    EXPECT_EQ(got.first_seen, want.first_seen);
    EXPECT_EQ(got.last_seen, want.last_seen);
    EXPECT_EQ(got.ack_updated_at, want.ack_updated_at);
    EXPECT_EQ(got.under_review, want.under_review);
    EXPECT_EQ(got.risk_level, want.risk_level);
    ASSERT_EQ(got.page_types.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(got.page_types[i].name, want.page_types[i].name) << i;
        EXPECT_EQ(got.page_types[i].listed, want.page_types[i].listed) << i;
        EXPECT_EQ(got.page_types[i].percentage, want.page_types[i].percentage) << i;
    }
    ASSERT_TRUE(got.script.has_value());
    const auto& s = *got.script;
    const auto& ws = *want.script;
    EXPECT_EQ(s.key, ws.key);
    EXPECT_EQ(s.id, ws.id);
    EXPECT_EQ(s.app_id, ws.app_id);
    EXPECT_EQ(s.host_domain, ws.host_domain);
    EXPECT_EQ(s.type, ws.type);
    EXPECT_EQ(s.vendor, ws.vendor);
    EXPECT_EQ(s.first_seen, ws.first_seen);
    EXPECT_EQ(s.last_seen, ws.last_seen);
    EXPECT_EQ(s.users_affected_percentage, ws.users_affected_percentage);
    EXPECT_EQ(s.ack, ws.ack);
    EXPECT_EQ(s.risk_level, ws.risk_level);
    EXPECT_EQ(s.risk_reason, ws.risk_reason);
    EXPECT_EQ(s.page_types, ws.page_types);
    ASSERT_EQ(got.actions.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(got.actions[i].type, want.actions[i].type) << i;
        EXPECT_EQ(got.actions[i].subtype, want.actions[i].subtype) << i;
        EXPECT_EQ(got.actions[i].last_seen, want.actions[i].last_seen) << i;
        EXPECT_EQ(got.actions[i].args, want.actions[i].args) << i;
    }
    ASSERT_EQ(got.vulnerabilities.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(got.vulnerabilities[i].package, want.vulnerabilities[i].package) << i;
        EXPECT_EQ(got.vulnerabilities[i].version, want.vulnerabilities[i].version) << i;
        EXPECT_EQ(got.vulnerabilities[i].ids, want.vulnerabilities[i].ids) << i;
    }
    EXPECT_EQ(got.raw_json, json);
    // And as a whole, so a field added to the model later is not forgotten here.
    EXPECT_TRUE(got == want);
}

TEST(PageParser, PageTypesAreTheSortedUnionOfListAndPercentages) {
    auto inc = parse_one(R"({"id":"a","page_types":["zeta","alpha","mid"],)"
                         R"("page_types_per":{"mid":10,"beta":20.5,"zeta":0}})");
    ASSERT_EQ(inc.page_types.size(), 4u);
    using pt = isync::model::page_type;
    EXPECT_EQ(inc.page_types[0], (pt{"alpha", true, std::nullopt}));
    EXPECT_EQ(inc.page_types[1], (pt{"beta", false, 20.5}));
    EXPECT_EQ(inc.page_types[2], (pt{"mid", true, 10.0}));
    EXPECT_EQ(inc.page_types[3], (pt{"zeta", true, 0.0}));
}

TEST(PageParser, NormalisesEveryTimestampForm) {
    auto inc = parse_one(R"({"id":"a","first_seen":"2023-01-21T15:00:00Z",)"
                         R"("last_seen":"2023-01-21T15:00:00.084Z",)"
                         R"("ack_updated_at":"2023-01-21T17:00:00+02:00",)"
                         R"("script":{"key":"k","first_seen":"2023-01-21T09:30:00-05:30",)"
                         R"("last_seen":"2023-01-21T15:00:00.123456Z"},)"
                         R"("actions":[{"last_seen":"2023-01-21T16:00:00.5+01:00"}]})");
    EXPECT_EQ(inc.first_seen, "2023-01-21T15:00:00.000Z");
    EXPECT_EQ(inc.last_seen, "2023-01-21T15:00:00.084Z");
    EXPECT_EQ(inc.ack_updated_at, "2023-01-21T15:00:00.000Z");
    ASSERT_TRUE(inc.script);
    EXPECT_EQ(inc.script->first_seen, "2023-01-21T15:00:00.000Z");
    EXPECT_EQ(inc.script->last_seen, "2023-01-21T15:00:00.123Z");
    ASSERT_EQ(inc.actions.size(), 1u);
    EXPECT_EQ(inc.actions[0].last_seen, "2023-01-21T15:00:00.500Z");
}

TEST(PageParser, KeepsATimestampItCannotParseAsSent) {
    auto inc = parse_one(R"({"id":"a","first_seen":"yesterday","last_seen":"2023-02-30T00:00:00Z"})");
    EXPECT_EQ(inc.first_seen, "yesterday");
    EXPECT_EQ(inc.last_seen, "2023-02-30T00:00:00Z");
}

TEST(PageParser, MissingOptionalFieldsAreEmpty) {
    auto inc = parse_one(R"({"id":"a"})");
    EXPECT_EQ(inc.id, "a");
    EXPECT_FALSE(inc.app_id);
    EXPECT_FALSE(inc.host_domain);
    EXPECT_FALSE(inc.category);
    EXPECT_FALSE(inc.title);
    EXPECT_FALSE(inc.details);
    EXPECT_FALSE(inc.initiator);
    EXPECT_FALSE(inc.first_seen);
    EXPECT_FALSE(inc.last_seen);
    EXPECT_FALSE(inc.ack_updated_at);
    EXPECT_FALSE(inc.under_review);
    EXPECT_FALSE(inc.risk_level);
    EXPECT_TRUE(inc.page_types.empty());
    EXPECT_FALSE(inc.script);
    EXPECT_TRUE(inc.actions.empty());
    EXPECT_TRUE(inc.vulnerabilities.empty());
    EXPECT_EQ(inc.raw_json, R"({"id":"a"})");
}

TEST(PageParser, NullOptionalFieldsAreEmpty) {
    auto inc = parse_one(R"({"id":"a","category":null,"incident":null,"details":null,"initiator":null,)"
                         R"("first_seen":null,"last_seen":null,"host_domain":null,"app_id":null,)"
                         R"("page_types":null,"page_types_per":null,"ack_updated_at":null,)"
                         R"("additional_data":null,"under_review":null,"risk_level":null,)"
                         R"("script":null,"actions":null})");
    EXPECT_FALSE(inc.app_id);
    EXPECT_FALSE(inc.host_domain);
    EXPECT_FALSE(inc.category);
    EXPECT_FALSE(inc.title);
    EXPECT_FALSE(inc.details);
    EXPECT_FALSE(inc.initiator);
    EXPECT_FALSE(inc.first_seen);
    EXPECT_FALSE(inc.last_seen);
    EXPECT_FALSE(inc.ack_updated_at);
    EXPECT_FALSE(inc.under_review);
    EXPECT_FALSE(inc.risk_level);
    EXPECT_TRUE(inc.page_types.empty());
    EXPECT_FALSE(inc.script);
    EXPECT_TRUE(inc.actions.empty());
    EXPECT_TRUE(inc.vulnerabilities.empty());
}

TEST(PageParser, NullFieldsInsideNestedObjectsAreEmpty) {
    auto inc = parse_one(R"({"id":"a","script":{"key":null,"id":"s","risk":null,"ack":null,)"
                         R"("users_affected_percentage":null,"page_types":null},)"
                         R"("additional_data":{"vulnerabilities":[{"package":"p","version":null,"ids":null}]},)"
                         R"("actions":[{"type":null,"subtype":"x","last_seen":null,"action_args":null}]})");
    ASSERT_TRUE(inc.script);
    EXPECT_FALSE(inc.script->key);
    EXPECT_EQ(inc.script->id, "s");
    EXPECT_FALSE(inc.script->risk_level);
    EXPECT_FALSE(inc.script->risk_reason);
    EXPECT_FALSE(inc.script->ack);
    EXPECT_FALSE(inc.script->users_affected_percentage);
    EXPECT_TRUE(inc.script->page_types.empty());
    ASSERT_EQ(inc.vulnerabilities.size(), 1u);
    EXPECT_EQ(inc.vulnerabilities[0].package, "p");
    EXPECT_FALSE(inc.vulnerabilities[0].version);
    EXPECT_TRUE(inc.vulnerabilities[0].ids.empty());
    ASSERT_EQ(inc.actions.size(), 1u);
    EXPECT_FALSE(inc.actions[0].type);
    EXPECT_EQ(inc.actions[0].subtype, "x");
    EXPECT_FALSE(inc.actions[0].last_seen);
    EXPECT_TRUE(inc.actions[0].args.empty());
}

TEST(PageParser, UnexpectedTypesBecomeEmptyNotErrors) {
    // The header: fields other than `id` of an unexpected type become empty
    // (scalars where text was expected are still text), and raw_json keeps them.
    const std::string json = R"({"id":"a","under_review":"yes","risk_level":3,"script":"not an object",)"
                             R"("page_types":"checkout","actions":{"type":"x"},"first_seen":{"a":1}})";
    auto inc = parse_one(json);
    EXPECT_FALSE(inc.under_review);
    EXPECT_EQ(inc.risk_level, "3");
    EXPECT_FALSE(inc.script);
    EXPECT_TRUE(inc.page_types.empty());
    EXPECT_TRUE(inc.actions.empty());
    EXPECT_FALSE(inc.first_seen);
    EXPECT_EQ(inc.raw_json, json);
}

TEST(PageParser, UnknownFieldsAreKeptInRawJson) {
    const std::string json =
        R"({"id":"a","brand_new_field":{"nested":[1,2,{"deep":"yes"}]},"risk_level":"critical","x_flag":true})";
    auto inc = parse_one(json);
    EXPECT_EQ(inc.risk_level, "critical");
    EXPECT_EQ(inc.raw_json, json);
    EXPECT_TRUE(contains(inc.raw_json, R"("brand_new_field":{"nested":[1,2,{"deep":"yes"}]})"));
}

TEST(PageParser, RawJsonIsTheExactBytesEvenWithWhitespaceAndEscapes) {
    // Pretty-printed, CRLF and tabs, escapes, braces inside strings, unicode
    // escapes: raw_json must be the bytes between the braces, not a re-serialisation.
    const std::string first =
        "{\r\n\t\"id\" :  \"a1\",\n  \"incident\": \"braces } { and \\\"quotes\\\"\",\n"
        "  \"details\": \"caf\\u00e9 \xe2\x9c\x93\",\n"
        "  \"page_types_per\": { \"checkout\" : 1.50 },\n"
        "  \"actions\": [ { \"type\": \"t\", \"action_args\": { \"k\": \"v\" } } ]\n}";
    const std::string second = R"({"id":"b2","n":1e2})";
    const std::string body =
        "\n  {\n \"data\" : [\n    " + first + " ,\n\n   " + second + "\n  ],\n  \"paging\" : { \"count\" : 2 }\n}\n\n";
    auto page = parse_page(body);
    ASSERT_TRUE(page.has_value()) << page.error().message;
    ASSERT_EQ(page->incidents.size(), 2u);
    EXPECT_EQ(page->incidents[0].raw_json, first);
    EXPECT_EQ(page->incidents[1].raw_json, second);
    EXPECT_EQ(page->incidents[0].title, "braces } { and \"quotes\"");
    EXPECT_EQ(page->incidents[0].details, "caf\xc3\xa9 \xe2\x9c\x93");
    ASSERT_EQ(page->incidents[0].page_types.size(), 1u);
    EXPECT_EQ(page->incidents[0].page_types[0].percentage, 1.5);
    EXPECT_EQ(page->count, 2);
}

TEST(PageParser, RawJsonOfEachIncidentInALongPage) {
    std::vector<std::string> incidents;
    std::string body = R"({"paging":{"count":20},"data":[)";
    for (int i = 0; i < 20; ++i) {
        incidents.push_back(documented_example_incident_json("id" + std::to_string(i)));
        if (i) body += ",";
        body += incidents.back();
    }
    body += "]}";
    auto page = parse_page(body);
    ASSERT_TRUE(page.has_value()) << page.error().message;
    ASSERT_EQ(page->incidents.size(), 20u);
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(page->incidents[i].id, "id" + std::to_string(i));
        EXPECT_EQ(page->incidents[i].raw_json, incidents[i]) << i;
    }
}

TEST(PageParser, EmptyDataArrayIsAValidPage) {
    auto page = parse_page(R"({"paging":{"previous":"","count":0},"data":[]})");
    ASSERT_TRUE(page.has_value()) << page.error().message;
    EXPECT_EQ(page->count, 0);
    EXPECT_TRUE(page->incidents.empty());
}

TEST(PageParser, TrailingWhitespaceIsAccepted) {
    auto page = parse_page(std::string(R"({"paging":{"count":0},"data":[]})") + " \r\n\t\n");
    EXPECT_TRUE(page.has_value());
}

TEST(PageParser, DataThatIsNotAnArrayNamesThePath) {
    auto page = parse_page(R"({"paging":{"count":1},"data":{"id":"a"}})");
    ASSERT_FALSE(page.has_value());
    EXPECT_EQ(page.error().code, errc::parse);
    EXPECT_TRUE(contains(page.error().message, "$.data"));
}

TEST(PageParser, MissingDataNamesThePath) {
    auto page = parse_page(R"({"paging":{"count":1}})");
    ASSERT_FALSE(page.has_value());
    EXPECT_TRUE(contains(page.error().message, "$.data"));
}

TEST(PageParser, IncidentWithoutIdNamesItsIndex) {
    auto page = parse_page(page_body(2, {R"({"id":"a"})", R"({"incident":"no id"})"}));
    ASSERT_FALSE(page.has_value());
    EXPECT_EQ(page.error().code, errc::parse);
    EXPECT_TRUE(contains(page.error().message, "$.data[1].id"));
}

TEST(PageParser, IncidentIdThatIsANumberNamesItsIndex) {
    auto page = parse_page(page_body(2, {R"({"id":"a"})", R"({"id":12345})"}));
    ASSERT_FALSE(page.has_value());
    EXPECT_EQ(page.error().code, errc::parse);
    EXPECT_TRUE(contains(page.error().message, "$.data[1].id"));
}

TEST(PageParser, IncidentIdThatIsNullOrEmptyIsRefused) {
    for (const char* inc : {R"({"id":null})", R"({"id":""})"}) {
        auto page = parse_page(page_body(2, {R"({"id":"a"})", inc}));
        ASSERT_FALSE(page.has_value()) << inc;
        EXPECT_TRUE(contains(page.error().message, "$.data[1].id")) << inc;
    }
}

TEST(PageParser, DataElementThatIsNotAnObjectNamesItsIndex) {
    auto page = parse_page(page_body(3, {R"({"id":"a"})", R"({"id":"b"})", R"("c")"}));
    ASSERT_FALSE(page.has_value());
    EXPECT_TRUE(contains(page.error().message, "$.data[2]"));
}

TEST(PageParser, CountThatIsAStringNamesThePath) {
    auto page = parse_page(R"({"paging":{"count":"1000"},"data":[]})");
    ASSERT_FALSE(page.has_value());
    EXPECT_EQ(page.error().code, errc::parse);
    EXPECT_TRUE(contains(page.error().message, "$.paging.count"));
}

TEST(PageParser, CountThatIsMissingNegativeOrFractionalNamesThePath) {
    for (const char* body : {R"({"data":[]})", R"({"paging":{},"data":[]})", R"({"paging":{"count":-1},"data":[]})",
                             R"({"paging":{"count":1.5},"data":[]})"}) {
        auto page = parse_page(body);
        ASSERT_FALSE(page.has_value()) << body;
        EXPECT_TRUE(contains(page.error().message, "$.paging.count")) << body;
    }
}

TEST(PageParser, RootThatIsNotAnObjectIsRefused) {
    auto page = parse_page(R"([{"paging":{"count":0},"data":[]}])");
    ASSERT_FALSE(page.has_value());
    EXPECT_EQ(page.error().code, errc::parse);
}

TEST(PageParser, HugeIntegerCountIsRefusedWithoutACrash) {
    EXPECT_REFUSED_WITH(R"({"paging":{"count":99999999999999999999999},"data":[]})", "$.paging.count");
}

TEST(PageParser, NotJsonSaysSoWithTheByteOffset) {
    // The first bad byte is the `x` at offset 11.
    EXPECT_REFUSED_WITH(R"({"paging": x})", "not valid JSON");
    EXPECT_REFUSED_WITH(R"({"paging": x})", "at byte 11");
}

TEST(PageParser, HtmlErrorPageIsNotJson) {
    EXPECT_REFUSED_WITH("<html><body>502 Bad Gateway</body></html>", "not valid JSON");
}

TEST(PageParser, EmptyBodyIsNotJson) { EXPECT_REFUSED_WITH("", "not valid JSON"); }

TEST(PageParser, TruncatedBodyIsNotJson) {
    const std::string body = page_body(1, {documented_example_incident_json()});
    EXPECT_REFUSED_WITH(body.substr(0, body.size() / 2), "not valid JSON");
}

TEST(PageParser, HostileNestingIsRefusedWithoutACrash) {
    const std::string body = R"({"paging":{"count":1},"data":[)" + std::string(100000, '[');
    EXPECT_REFUSED_WITH(body, "nested deeper");
}

TEST(PageParser, HostileObjectNestingInsideAnIncidentIsRefused) {
    std::string inc = R"({"id":"a","x":)";
    for (int i = 0; i < 1000; ++i) inc += R"({"k":)";
    inc += "1";
    inc += std::string(1000, '}');
    inc += "}";
    EXPECT_REFUSED_WITH(page_body(1, {inc}), "nested deeper");
}

TEST(PageParser, NestingUpToTheLimitIsAccepted) {
    // root(1) > data(2) > incident(3) > ... : fill exactly to max_json_depth.
    std::string inc = R"({"id":"a","x":)";
    const int extra = isync::api::max_json_depth - 3;
    inc += std::string(static_cast<std::size_t>(extra), '[') + std::string(static_cast<std::size_t>(extra), ']') + "}";
    auto page = parse_page(page_body(1, {inc}));
    ASSERT_TRUE(page.has_value()) << page.error().message;
    EXPECT_EQ(page->incidents[0].raw_json, inc);

    std::string one_more = R"({"id":"a","x":)";
    one_more += std::string(static_cast<std::size_t>(extra + 1), '[') +
                std::string(static_cast<std::size_t>(extra + 1), ']') + "}";
    EXPECT_REFUSED_WITH(page_body(1, {one_more}), "nested deeper");
}

TEST(PageParser, HugeNumberIsRefusedWithoutACrash) {
    EXPECT_REFUSED_WITH(page_body(1, {R"({"id":"a","script":{"users_affected_percentage":1e400}})"}), "not valid JSON");
}

TEST(PageParser, TrailingJunkIsRefused) {
    EXPECT_REFUSED_WITH(R"({"paging":{"count":0},"data":[]} junk)", "after the JSON document");
    EXPECT_REFUSED_WITH(R"({"paging":{"count":0},"data":[]}{"paging":{"count":0},"data":[]})",
                        "after the JSON document");
}
