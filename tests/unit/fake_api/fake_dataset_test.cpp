// The fake API's dataset: deterministic, compact, and its expected_incident()
// agrees with the JSON it serves (checked by an independent reading below).

#include "api/page_parser.hpp"
#include "fake_api/dataset.hpp"
#include "fake_api/endpoint.hpp"
#include "fake_api/random.hpp"
#include "util/timestamp.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <regex>
#include <set>

namespace {

using fake_api::dataset;
using fake_api::dataset_options;

constexpr std::int64_t day_ms = 86'400'000;

dataset_options small_options(std::uint64_t seed = 7) {
    return {.seed = seed,
            .incidents = 3000,
            .pairs = {{"PXapp1", "one.example"}, {"PXapp2", "two.example"}, {"PXapp1", "three.example"}},
            .start_ms = 1674259200000,
            .end_ms = 1674259200000 + 3 * day_ms};
}

// A plain reading of the served JSON, written separately from the generator,
// so a mistake in either shows up as a disagreement.
std::optional<std::string> text(const rapidjson::Value& object, const char* name) {
    auto it = object.FindMember(name);
    if (it == object.MemberEnd() || !it->value.IsString()) return std::nullopt;
    return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<std::string> instant(const rapidjson::Value& object, const char* name) {
    auto t = text(object, name);
    return t ? isync::util::normalize_iso8601(*t) : std::nullopt;
}

isync::model::incident read_incident(const std::string& json) {
    rapidjson::Document doc;
    doc.Parse(json.c_str(), json.size());
    EXPECT_FALSE(doc.HasParseError()) << json;
    isync::model::incident m;
    m.id = *text(doc, "id");
    m.app_id = text(doc, "app_id");
    m.host_domain = text(doc, "host_domain");
    m.category = text(doc, "category");
    m.title = text(doc, "incident");
    m.details = text(doc, "details");
    m.initiator = text(doc, "initiator");
    m.first_seen = instant(doc, "first_seen");
    m.last_seen = instant(doc, "last_seen");
    m.ack_updated_at = instant(doc, "ack_updated_at");
    if (doc.HasMember("under_review") && doc["under_review"].IsBool()) m.under_review = doc["under_review"].GetBool();
    m.risk_level = text(doc, "risk_level");
    std::map<std::string, isync::model::page_type> types;
    if (doc.HasMember("page_types") && doc["page_types"].IsArray())
        for (const auto& t : doc["page_types"].GetArray()) {
            auto& p = types[t.GetString()];
            p.name = t.GetString();
            p.listed = true;
        }
    if (doc.HasMember("page_types_per") && doc["page_types_per"].IsObject())
        for (const auto& [k, v] : doc["page_types_per"].GetObject()) {
            auto& p = types[k.GetString()];
            p.name = k.GetString();
            p.percentage = v.GetDouble();
        }
    for (auto& [name, p] : types) m.page_types.push_back(p);
    if (doc.HasMember("script") && doc["script"].IsObject()) {
        const auto& s = doc["script"];
        isync::model::script ms;
        ms.key = text(s, "key");
        ms.id = text(s, "id");
        ms.app_id = text(s, "app_id");
        ms.host_domain = text(s, "host_domain");
        ms.type = text(s, "type");
        ms.vendor = text(s, "vendor");
        ms.first_seen = instant(s, "first_seen");
        ms.last_seen = instant(s, "last_seen");
        ms.users_affected_percentage = s["users_affected_percentage"].GetDouble();
        ms.ack = s["ack"].GetBool();
        ms.risk_level = text(s["risk"], "level");
        ms.risk_reason = text(s["risk"], "reason");
        for (const auto& t : s["page_types"].GetArray()) ms.page_types.emplace_back(t.GetString());
        m.script = ms;
    }
    if (doc.HasMember("actions") && doc["actions"].IsArray())
        for (const auto& a : doc["actions"].GetArray()) {
            isync::model::action ma{text(a, "type"), text(a, "subtype"), instant(a, "last_seen"), {}};
            for (const auto& [k, v] : a["action_args"].GetObject()) ma.args.emplace_back(k.GetString(), v.GetString());
            m.actions.push_back(ma);
        }
    if (doc.HasMember("additional_data") && doc["additional_data"].HasMember("vulnerabilities"))
        for (const auto& v : doc["additional_data"]["vulnerabilities"].GetArray()) {
            isync::model::vulnerability mv{text(v, "package"), text(v, "version"), {}};
            for (const auto& id : v["ids"].GetArray()) mv.ids.emplace_back(id.GetString());
            m.vulnerabilities.push_back(mv);
        }
    m.raw_json = json;
    return m;
}

bool is_normalized(const std::optional<std::string>& t) {
    static const std::regex form(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    return !t || std::regex_match(*t, form);
}

TEST(FakeDataset, SameSeedSameData) {
    const dataset a(small_options(7)), b(small_options(7));
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a.json(i), b.json(i)) << i;
        ASSERT_EQ(a.last_seen_ms(i), b.last_seen_ms(i));
    }
}

TEST(FakeDataset, DifferentSeedsDiffer) {
    const dataset a(small_options(7)), b(small_options(8));
    std::size_t same = 0;
    for (std::size_t i = 0; i < a.size(); ++i) same += a.json(i) == b.json(i);
    EXPECT_EQ(same, 0u);
    EXPECT_NE(a.id(0), b.id(0));
}

TEST(FakeDataset, IdsAreUniqueHexAndFindable) {
    const dataset d(small_options());
    static const std::regex hex24("[0-9a-f]{24}");
    std::set<std::string> ids;
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto id = d.id(i);
        ASSERT_TRUE(std::regex_match(id, hex24)) << id;
        ids.insert(id);
        ASSERT_EQ(d.find(id), i);
    }
    EXPECT_EQ(ids.size(), d.size());
    EXPECT_FALSE(d.find("000000000000000000000000").has_value());
    EXPECT_FALSE(d.find("not an id").has_value());
}

TEST(FakeDataset, IdPermutationInverts) {
    const fake_api::id_permutation perm(42);
    for (std::uint64_t x : {0ull, 1ull, 2ull, 999'999ull, ~0ull}) EXPECT_EQ(perm.inverse(perm.forward(x)), x);
}

TEST(FakeDataset, ExpectedIncidentMatchesTheServedJson) {
    const dataset d(small_options());
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto expected = d.expected_incident(i);
        ASSERT_EQ(expected.raw_json, d.json(i));
        ASSERT_EQ(expected, read_incident(d.json(i))) << d.json(i);
    }
}

TEST(FakeDataset, TimestampsAreNormalizedAndOrdered) {
    const dataset d(small_options());
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto m = d.expected_incident(i);
        ASSERT_EQ(m.last_seen, isync::util::format_iso8601_ms(d.last_seen_ms(i)));
        EXPECT_GE(d.last_seen_ms(i), d.options().start_ms);
        EXPECT_LT(d.last_seen_ms(i), d.options().end_ms);
        EXPECT_TRUE(is_normalized(m.first_seen) && is_normalized(m.last_seen) && is_normalized(m.ack_updated_at));
        if (m.first_seen) {
            EXPECT_LE(*m.first_seen, *m.last_seen);
        }
        for (const auto& a : m.actions) EXPECT_TRUE(is_normalized(a.last_seen));
        EXPECT_TRUE(std::is_sorted(m.page_types.begin(), m.page_types.end(),
                                   [](const auto& a, const auto& b) { return a.name < b.name; }));
    }
}

TEST(FakeDataset, ServesEveryVarietyTheDaemonMustSurvive) {
    const dataset d(small_options());
    // The last_seen value's form, from its length: 20 (`...:00Z`), 24 (`.084Z`) or 29 (`.084+02:00`).
    auto last_seen_length = [](const std::string& json) {
        const auto at = json.find("\"last_seen\":\"") + 13;
        return json.find('"', at) - at;
    };
    std::map<std::string, int> seen;
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto json = d.json(i);
        const auto m = d.expected_incident(i);
        seen["seconds_z"] += last_seen_length(json) == 20;
        seen["millis_z"] += last_seen_length(json) == 24;
        seen["offset"] += last_seen_length(json) == 29;
        seen["details null"] += json.find(R"("details":null)") != std::string::npos;
        seen["no script"] += !m.script;
        seen["unknown field"] += json.find("new_vendor_field") != std::string::npos;
        seen["unlisted percentage"] += std::any_of(m.page_types.begin(), m.page_types.end(),
                                                   [](const auto& p) { return !p.listed && p.percentage; });
        seen["listed without percentage"] += std::any_of(m.page_types.begin(), m.page_types.end(),
                                                         [](const auto& p) { return p.listed && !p.percentage; });
        seen["vulnerabilities"] += !m.vulnerabilities.empty();
        seen["three actions"] += m.actions.size() == 3;
        seen["escaped text"] += json.find("\\\"") != std::string::npos || json.find("\\n") != std::string::npos;
        seen["non-ascii"] += json.find("\xc3\xa9") != std::string::npos;
    }
    for (const auto& [what, n] : seen) EXPECT_GT(n, 0) << what;
    EXPECT_LT(seen["details null"] + seen["no script"], static_cast<int>(d.size()) / 10);
}

TEST(FakeDataset, ScriptsAreSharedAndConsistent) {
    const dataset d(small_options());
    std::map<std::string, isync::model::script> by_key;
    std::size_t with_script = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto m = d.expected_incident(i);
        if (!m.script) continue;
        ++with_script;
        EXPECT_EQ(m.script->app_id, m.app_id);
        EXPECT_EQ(m.script->host_domain, m.host_domain);
        const auto [it, inserted] = by_key.emplace(*m.script->key, *m.script);
        if (!inserted) {
            EXPECT_EQ(it->second, *m.script) << "one key, two contents";
        }
    }
    EXPECT_LE(by_key.size(), d.script_count());
    EXPECT_LT(by_key.size() * 10, with_script);
}

TEST(FakeDataset, WindowsCountAndOrderLikeABruteForceScan) {
    const dataset d(small_options());
    const auto from = d.options().start_ms + day_ms / 2, to = d.options().start_ms + 2 * day_ms;
    for (std::size_t p = 0; p < d.pairs().size(); ++p) {
        std::vector<std::uint32_t> expected;
        for (std::uint32_t i = 0; i < d.size(); ++i)
            if (d.pair_of(i) == p && d.last_seen_ms(i) >= from && d.last_seen_ms(i) < to) expected.push_back(i);
        std::sort(expected.begin(), expected.end(), [&](auto a, auto b) {
            return d.last_seen_ms(a) != d.last_seen_ms(b) ? d.last_seen_ms(a) > d.last_seen_ms(b) : d.id(a) < d.id(b);
        });
        const auto w = d.window(p, from, to);
        ASSERT_EQ(std::vector<std::uint32_t>(w.begin(), w.end()), expected);
        const std::size_t pairs[] = {p};
        EXPECT_EQ(d.count(pairs, from, to), expected.size());
        std::vector<std::uint32_t> paged;
        for (std::size_t skip = 0; skip < expected.size(); skip += 47) {
            auto page = d.page(pairs, from, to, skip, 47);
            paged.insert(paged.end(), page.begin(), page.end());
        }
        EXPECT_EQ(paged, expected);
    }
    EXPECT_TRUE(d.window(0, to, from).empty());
    EXPECT_EQ(d.window(0, d.options().start_ms, d.options().end_ms).size() +
                  d.window(1, d.options().start_ms, d.options().end_ms).size() +
                  d.window(2, d.options().start_ms, d.options().end_ms).size(),
              d.size());
}

TEST(FakeDataset, PagesOverSeveralPairsMergeInServeOrder) {
    const dataset d(small_options());
    const std::size_t pairs[] = {0, 2};
    const auto from = d.options().start_ms, to = d.options().end_ms;
    std::vector<std::uint32_t> all;
    for (std::size_t skip = 0;; skip += 100) {
        auto page = d.page(pairs, from, to, skip, 100);
        if (page.empty()) break;
        all.insert(all.end(), page.begin(), page.end());
    }
    ASSERT_EQ(all.size(), d.count(pairs, from, to));
    for (std::size_t k = 1; k < all.size(); ++k) {
        const auto a = all[k - 1], b = all[k];
        ASSERT_TRUE(d.last_seen_ms(a) > d.last_seen_ms(b) ||
                    (d.last_seen_ms(a) == d.last_seen_ms(b) && d.id(a) < d.id(b)));
    }
}

TEST(FakeDataset, LiveStepsChangeAndAddDeterministically) {
    dataset a(small_options()), b(small_options());
    const auto now = a.options().end_ms + day_ms;
    const auto before = a.expected_incident(0);
    const auto step = a.step_live(5, now);
    ASSERT_EQ(step.changed.size(), 5u);
    ASSERT_EQ(step.added.size(), 5u);
    EXPECT_EQ(a.size(), 3005u);
    const auto step_b = b.step_live(5, now);
    EXPECT_EQ(step.changed, step_b.changed);
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a.json(i), b.json(i));

    for (auto i : step.changed) {
        EXPECT_GE(a.version(i), 1u);
        EXPECT_LE(a.last_seen_ms(i), now);
        EXPECT_GT(a.last_seen_ms(i), now - 1000);
        const auto m = a.expected_incident(i);
        EXPECT_EQ(m, read_incident(a.json(i)));
        ASSERT_FALSE(m.actions.empty());
        EXPECT_EQ(m.actions.back().args.back(),
                  (std::pair<std::string, std::string>{"change", std::to_string(a.version(i))}));
    }
    for (auto i : step.added) {
        EXPECT_EQ(a.find(a.id(i)), i);
        EXPECT_GT(a.last_seen_ms(i), now - 1000);
        EXPECT_EQ(a.expected_incident(i), read_incident(a.json(i)));
    }
    // The changed and new incidents, and only they, are in a window at `now`.
    std::size_t at_now = 0;
    for (std::size_t p = 0; p < a.pairs().size(); ++p) at_now += a.window(p, now - 1000, now + 1).size();
    std::set<std::size_t> moved(step.changed.begin(), step.changed.end());
    EXPECT_EQ(at_now, moved.size() + step.added.size());
    if (std::find(step.changed.begin(), step.changed.end(), 0u) == step.changed.end()) {
        EXPECT_EQ(a.expected_incident(0), before);
    }
}

TEST(FakeDataset, LiveChangeMovesTheRiskLevel) {
    dataset fresh(small_options()), live(small_options());
    const auto now = live.options().end_ms + day_ms;
    for (int n = 0; n < 20; ++n) {
        const auto i = live.step_live(1, now).changed[0];
        if (live.version(i) != 1) continue;
        EXPECT_NE(live.expected_incident(i).risk_level, fresh.expected_incident(i).risk_level) << i;
        EXPECT_EQ(live.expected_incident(i).actions.size(), fresh.expected_incident(i).actions.size() + 1) << i;
    }
}

// The contract between the fake and the daemon: the daemon's own parser, fed
// the fake's pages, produces exactly expected_incident().
TEST(FakeDataset, TheDaemonsParserReadsServedPagesAsExpected) {
    const dataset d(small_options());
    const fake_api::endpoint_config config;
    for (const char* pair : {"appId=PXapp1&tld=one.example", "appId=PXapp2&tld=two.example"}) {
        for (std::size_t skip = 0;; skip += 500) {
            const auto target = std::string("/v1/incidents?") + pair +
                                "&from=0&to=" + std::to_string(d.options().end_ms) +
                                "&take=500&skip=" + std::to_string(skip);
            const auto reply = fake_api::handle_request("GET", target, "Bearer test-token", d, config, 0);
            ASSERT_EQ(reply.status, 200u) << reply.body;
            auto page = isync::api::parse_page(reply.body);
            ASSERT_TRUE(page) << page.error().message;
            for (const auto& parsed : page->incidents) {
                const auto i = d.find(parsed.id);
                ASSERT_TRUE(i);
                ASSERT_EQ(parsed, d.expected_incident(*i)) << d.json(*i);
            }
            if (page->incidents.empty()) break;
        }
    }
}

TEST(FakeDataset, HeldCompactly) {
    const dataset d({.seed = 3, .incidents = 20000, .pairs = fake_api::sim_pairs(4)});
    std::size_t json_bytes = 0;
    for (std::size_t i = 0; i < d.size(); ++i) json_bytes += d.json_size(i);
    // The budget is ~2 KB per incident; the shared script is stored once.
    EXPECT_LT(d.memory_bytes() / d.size(), 2048u) << "served JSON averages " << json_bytes / d.size() << " bytes";
}

TEST(FakeDataset, RejectsBadOptions) {
    EXPECT_THROW(dataset({.start_ms = 10, .end_ms = 10}), std::invalid_argument);
    EXPECT_THROW(dataset({.pairs = {{"a", "b"}, {"a", "b"}}}), std::invalid_argument);
}

}  // namespace
