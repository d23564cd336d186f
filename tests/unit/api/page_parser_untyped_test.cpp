// parse_page(..., parse_mode::untyped) and parse_incident_objects: an untyped
// parse must cut out exactly what the typed parse keeps as raw_json, refuse
// exactly what the typed parse refuses, and typing its pieces afterwards must
// give the typed parse's incidents.

#include "api/page_parser.hpp"
#include "fake_api/dataset.hpp"
#include "fake_api/endpoint.hpp"
#include "util/hash.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

using isync::api::parse_incident_objects;
using isync::api::parse_mode;
using isync::api::parse_page;
using isync::model::page;
using isync::test::documented_example_incident;
using isync::test::documented_example_incident_json;
using isync::test::page_body;

namespace {

// The untyped pieces as the writer hands them to parse_incident_objects.
std::vector<std::string_view> raw_views(const page& untyped) {
    std::vector<std::string_view> out;
    out.reserve(untyped.untyped.size());
    for (const auto& raw : untyped.untyped) out.emplace_back(raw.raw_json);
    return out;
}

// Checks that the untyped parse of `body` agrees with its typed parse: same
// count, same ids and bytes, hash of the bytes, and that typing the pieces
// gives the typed incidents and unknown fields.
void expect_untyped_agrees_with_typed(const std::string& body) {
    auto typed = parse_page(body, parse_mode::typed);
    ASSERT_TRUE(typed.has_value()) << typed.error().message;
    auto untyped = parse_page(body, parse_mode::untyped);
    ASSERT_TRUE(untyped.has_value()) << untyped.error().message;

    EXPECT_EQ(untyped->count, typed->count);
    EXPECT_TRUE(untyped->incidents.empty()) << "untyped mode must not build the model";
    EXPECT_TRUE(untyped->unknown_fields.empty()) << "unknown fields are found by typing";
    EXPECT_TRUE(typed->untyped.empty()) << "typed mode must not fill page::untyped";
    ASSERT_EQ(untyped->untyped.size(), typed->incidents.size());
    for (std::size_t i = 0; i < typed->incidents.size(); ++i) {
        const auto& raw = untyped->untyped[i];
        EXPECT_EQ(raw.id, typed->incidents[i].id) << i;
        EXPECT_EQ(raw.raw_json, typed->incidents[i].raw_json) << i;
        EXPECT_EQ(raw.content_hash, isync::util::hash_bytes(raw.raw_json)) << i;
    }

    const auto views = raw_views(*untyped);
    auto retyped = parse_incident_objects(views);
    ASSERT_TRUE(retyped.has_value()) << retyped.error().message;
    ASSERT_EQ(retyped->incidents.size(), typed->incidents.size());
    for (std::size_t i = 0; i < typed->incidents.size(); ++i)
        EXPECT_TRUE(retyped->incidents[i] == typed->incidents[i]) << "incident " << i << " differs after retyping";
    ASSERT_EQ(retyped->unknown_fields.size(), typed->unknown_fields.size());
    for (std::size_t i = 0; i < typed->unknown_fields.size(); ++i) {
        EXPECT_EQ(retyped->unknown_fields[i].json_path, typed->unknown_fields[i].json_path) << i;
        EXPECT_EQ(retyped->unknown_fields[i].incident_id, typed->unknown_fields[i].incident_id) << i;
    }
}

// How a parse ended, as text, computed in a child process so that a crash on a
// hostile body fails this test instead of killing the test binary.
std::string outcome(const std::string& body, parse_mode mode) {
    const auto run = isync::test::run_isolated([&](std::string& out) {
        auto r = parse_page(body, mode);
        if (r.has_value()) {
            out = "accepted";
            return;
        }
        out = "refused " + std::to_string(static_cast<int>(r.error().code)) + " " + r.error().message;
    });
    if (run.crashed) return "crashed: " + run.how;
    return run.output;
}

struct malformed {
    std::string what;
    std::string body;
};

std::vector<malformed> malformed_bodies() {
    const std::string example = documented_example_incident_json();
    const std::string full = page_body(1, {example});
    std::string object_nesting = R"({"id":"a","x":)";
    for (int i = 0; i < 1000; ++i) object_nesting += R"({"k":)";
    object_nesting += "1" + std::string(1000, '}') + "}";
    const auto one_past = static_cast<std::size_t>(isync::api::max_json_depth - 3 + 1);
    const std::string too_deep_by_one =
        R"({"id":"a","x":)" + std::string(one_past, '[') + std::string(one_past, ']') + "}";
    return {
        {"root is an array", R"([{"paging":{"count":0},"data":[]}])"},
        {"root is a string", R"("page")"},
        {"root is a number", "42"},
        {"root is null", "null"},
        {"empty body", ""},
        {"html error page", "<html><body>502 Bad Gateway</body></html>"},
        {"not json", R"({"paging": x})"},
        {"missing data", R"({"paging":{"count":1}})"},
        {"data is an object", R"({"paging":{"count":1},"data":{"id":"a"}})"},
        {"data is null", R"({"paging":{"count":1},"data":null})"},
        {"data element is a string", page_body(3, {R"({"id":"a"})", R"({"id":"b"})", R"("c")"})},
        {"data element is an array", page_body(2, {R"({"id":"a"})", R"([{"id":"b"}])"})},
        {"id missing", page_body(2, {R"({"id":"a"})", R"({"incident":"no id"})"})},
        {"id is a number", page_body(2, {R"({"id":"a"})", R"({"id":12345})"})},
        {"id is null", page_body(2, {R"({"id":"a"})", R"({"id":null})"})},
        {"id is empty", page_body(2, {R"({"id":"a"})", R"({"id":""})"})},
        {"id is an object", page_body(1, {R"({"id":{"x":"a"}})"})},
        {"count missing", R"({"data":[]})"},
        {"paging empty", R"({"paging":{},"data":[]})"},
        {"paging is a number", R"({"paging":5,"data":[]})"},
        {"count negative", R"({"paging":{"count":-1},"data":[]})"},
        {"count fractional", R"({"paging":{"count":1.5},"data":[]})"},
        {"count is a string", R"({"paging":{"count":"1000"},"data":[]})"},
        {"count too big", R"({"paging":{"count":99999999999999999999999},"data":[]})"},
        {"truncated", full.substr(0, full.size() / 2)},
        {"truncated after the last incident", full.substr(0, full.size() - 2)},
        {"trailing junk", R"({"paging":{"count":0},"data":[]} junk)"},
        {"two documents", R"({"paging":{"count":0},"data":[]}{"paging":{"count":0},"data":[]})"},
        {"hostile array nesting", R"({"paging":{"count":1},"data":[)" + std::string(100000, '[')},
        {"hostile object nesting inside an incident", page_body(1, {object_nesting})},
        {"one level too deep", page_body(1, {too_deep_by_one})},
        {"huge number", page_body(1, {R"({"id":"a","script":{"users_affected_percentage":1e400}})"})},
    };
}

}  // namespace

TEST(PageParserUntyped, DocumentedExampleIsCutOutExactly) {
    const std::string json = documented_example_incident_json();
    const std::string body = page_body(1000, {json});
    auto untyped = parse_page(body, parse_mode::untyped);
    ASSERT_TRUE(untyped.has_value()) << untyped.error().message;
    EXPECT_EQ(untyped->count, 1000);
    EXPECT_TRUE(untyped->incidents.empty());
    ASSERT_EQ(untyped->untyped.size(), 1u);
    EXPECT_EQ(untyped->untyped[0].id, isync::test::example_incident_id);
    EXPECT_EQ(untyped->untyped[0].raw_json, json);
    EXPECT_EQ(untyped->untyped[0].content_hash, isync::util::hash_bytes(json));

    // Typing the piece gives the documented model, not just "the same as typed".
    const auto views = raw_views(*untyped);
    auto retyped = parse_incident_objects(views);
    ASSERT_TRUE(retyped.has_value()) << retyped.error().message;
    ASSERT_EQ(retyped->incidents.size(), 1u);
    EXPECT_TRUE(retyped->incidents[0] == documented_example_incident());

    expect_untyped_agrees_with_typed(body);
}

TEST(PageParserUntyped, LongPageWithOddBytesAndUnknownFieldsAgreesWithTyped) {
    std::string body = "\n  {\"paging\" : {\"count\": 4242} , \"data\" : [\n";
    for (int i = 0; i < 20; ++i) {
        body += documented_example_incident_json("id" + std::to_string(i));
        body += " ,\r\n\t";
    }
    // Whitespace, escapes, braces inside strings, a number where text was expected.
    body +=
        "{\r\n\t\"id\" :  \"odd1\",\n  \"incident\": \"braces } { and \\\"quotes\\\"\",\n"
        "  \"details\": \"caf\\u00e9 \xe2\x9c\x93\", \"risk_level\": 3,\n"
        "  \"page_types_per\": { \"checkout\" : 1.50 } }\n,";
    // Schema drift at every level the parser tracks, on two incidents.
    body +=
        R"({"id":"drift1","brand_new":{"a":[1,2]},"script":{"key":"k","new_flag":true,"risk":{"level":"low","score":9}},)"
        R"("actions":[{"type":"t","weight":2}],"additional_data":{"vulnerabilities":[{"package":"p","cvss":7.5}],"extra":1}})";
    body += R"(,{"id":"drift2","brand_new":null,"another":"x"})";
    body += ",{\"id\":\"minimal\"}\n]\n}\n";

    expect_untyped_agrees_with_typed(body);

    // The drift is really there, so the unknown_fields comparison above compared something.
    auto typed = parse_page(body);
    ASSERT_TRUE(typed.has_value());
    EXPECT_GE(typed->unknown_fields.size(), 7u);
    EXPECT_EQ(typed->incidents.size(), 24u);
}

TEST(PageParserUntyped, EmptyDataArrayGivesAnEmptyUntypedPage) {
    auto untyped = parse_page(R"({"paging":{"count":0},"data":[]})", parse_mode::untyped);
    ASSERT_TRUE(untyped.has_value()) << untyped.error().message;
    EXPECT_EQ(untyped->count, 0);
    EXPECT_TRUE(untyped->untyped.empty());
    auto retyped = parse_incident_objects({});
    ASSERT_TRUE(retyped.has_value()) << retyped.error().message;
    EXPECT_TRUE(retyped->incidents.empty());
}

TEST(PageParserUntyped, ContentHashChangesWithAnyByte) {
    // The writer skips an incident whose hash matches the stored one, so a
    // one-byte change (even whitespace) must give another hash.
    const std::string a = R"({"id":"a","risk_level":"high"})";
    const std::string b = R"({"id":"a","risk_level":"low"})";
    const std::string c = R"({"id":"a", "risk_level":"high"})";
    auto page = parse_page(page_body(3, {a, b, c}), parse_mode::untyped);
    ASSERT_TRUE(page.has_value()) << page.error().message;
    ASSERT_EQ(page->untyped.size(), 3u);
    EXPECT_NE(page->untyped[0].content_hash, page->untyped[1].content_hash);
    EXPECT_NE(page->untyped[0].content_hash, page->untyped[2].content_hash);
    EXPECT_EQ(page->untyped[2].raw_json, c);
}

TEST(PageParserUntyped, EveryBodyTheTypedModeRefusesIsRefusedTheSameWay) {
    const auto bodies = malformed_bodies();
    for (const auto& m : bodies) {
        SCOPED_TRACE(m.what);
        const std::string typed = outcome(m.body, parse_mode::typed);
        const std::string untyped = outcome(m.body, parse_mode::untyped);
        // The list must only hold bodies the typed mode refuses (with errc::parse).
        EXPECT_EQ(typed.rfind("refused " + std::to_string(static_cast<int>(isync::errc::parse)) + " ", 0), 0u) << typed;
        EXPECT_EQ(untyped, typed);
    }
}

TEST(PageParserUntyped, GeneratedPagesAgreeWithTheTypedParse) {
    // Pages served by the fake API over several seeds, pairs, page sizes and
    // offsets; each must cut out and retype exactly as the typed parse reads it.
    const fake_api::endpoint_config config;
    std::size_t pages = 0;
    std::size_t incidents = 0;
    for (std::uint64_t seed : {21u, 22u, 23u}) {
        const fake_api::dataset d({.seed = seed,
                                   .incidents = 1200,
                                   .pairs = {{"PXapp1", "one.example"}, {"PXapp2", "two.example"}},
                                   .start_ms = 1674259200000,
                                   .end_ms = 1674259200000 + 86'400'000});
        for (const char* pair : {"appId=PXapp1&tld=one.example", "appId=PXapp2&tld=two.example"}) {
            std::size_t skip = 0;
            for (std::size_t n = 0;; ++n) {
                const std::size_t take = 1 + (n * 7 + seed) % 23;  // 1..23, varying page to page
                const auto target = std::string("/v1/incidents?") + pair +
                                    "&from=0&to=" + std::to_string(d.options().end_ms) +
                                    "&take=" + std::to_string(take) + "&skip=" + std::to_string(skip);
                const auto reply = fake_api::handle_request("GET", target, "Bearer test-token", d, config, 0);
                ASSERT_EQ(reply.status, 200u) << reply.body;
                SCOPED_TRACE(target);
                expect_untyped_agrees_with_typed(reply.body);
                if (::testing::Test::HasFailure()) return;  // one clear failure, not hundreds
                ++pages;
                incidents += reply.incidents;
                if (reply.incidents == 0) break;
                skip += take;
            }
        }
    }
    EXPECT_GE(pages, 200u);
    EXPECT_EQ(incidents, 3u * 1200u);
}
