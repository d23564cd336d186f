// The content hashes, pinned to fixed outputs. Every database stores them:
// incidents.content_hash is util::hash_bytes (XXH3-64) of the raw JSON, and
// substance_hash and the scripts' content_hash come from util::content_hasher
// (FNV-1a) over typed fields. A change to any of them makes every stored row
// look changed, so the next pass rewrites the whole database and moves every
// content_changed_at; content_hasher's cannot even be recomputed in SQL.
//
// The expected values below were computed once, with the code at commit
// 48a34e1, and must never change. If a test here fails, the hash changed: put
// it back. (hash_bytes may change only together with a migration that
// recomputes incidents.content_hash, as schema/003_xxh3_content_hash.sql
// does; update its pins in that same commit.)
//
// content_hasher adds integers and doubles as their bytes in memory, so these
// values hold on little-endian hosts (x86-64, AArch64), the ones supported.

#include "model/incident.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "util/hash.hpp"

#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

using isync::model::incident;
using isync::util::content_hasher;
using isync::util::hash_bytes;

namespace {

constexpr bool little_endian = std::endian::native == std::endian::little;

// `n` bytes of a fixed pattern: XXH3 has separate code paths for lengths
// 0, 1-3, 4-8, 9-16, 17-128, 129-240 and above, so the pins cover each.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + 7) & 0xff);
    return s;
}

struct bytes_pin {
    std::string input;
    std::int64_t expected;
};

// Shared by HashBytes and the SQL function isync_content_hash (text only: no NUL bytes).
std::vector<bytes_pin> hash_bytes_pins() {
    return {
        {"", 3244421341483603138},
        {"a", -1817709641818812897},
        {"abc", 8696274497037089104},
        {"incident", -6570207444188470625},
        {R"({"id":"63cbd5e1a5b6c7d8e9f01234","category":"pii"})", 1936710585269800013},
        {"caf\xc3\xa9 \xe2\x98\x95", -3284930749308897270},  // UTF-8
        {pattern(16), 9099606716676871632},
        {pattern(17), 2345212530088924167},
        {pattern(128), -492175581222641016},
        {pattern(129), -506823097681485574},
        {pattern(240), -3690920546649497853},
        {pattern(241), 809349449570470400},
        {pattern(1000), -7451375110499705139},
        {pattern(5000), 6169931020318013678},
    };
}

// Every field set, so that each one takes part in its hash.
incident fixed_incident() {
    incident inc;
    inc.id = "63cbd5e1a5b6c7d8e9f01234";
    inc.app_id = "PXapp001";
    inc.host_domain = "shop.example.com";
    inc.category = "pii";
    inc.title = "New script reads PII fields";
    inc.details = "The script reads the email and card fields on checkout";
    inc.initiator = "https://cdn.vendor.example/js/tracker.js";
    inc.first_seen = "2023-01-21T15:00:00.000Z";
    inc.last_seen = "2023-01-22T08:30:15.084Z";
    inc.ack_updated_at = "2023-01-22T09:00:00.000Z";
    inc.under_review = true;
    inc.risk_level = "high";
    inc.page_types = {{"checkout", true, 0.75}, {"login", false, 0.25}, {"search", true, std::nullopt}};
    isync::model::script s;
    s.key = "cdn.vendor.example/js/tracker.js";
    s.id = "script-0042";
    s.app_id = "PXapp001";
    s.host_domain = "cdn.vendor.example";
    s.type = "third_party";
    s.vendor = "Vendor Inc.";
    s.first_seen = "2023-01-01T00:00:00.000Z";
    s.last_seen = "2023-01-22T08:30:15.084Z";
    s.users_affected_percentage = 12.5;
    s.ack = false;
    s.risk_level = "medium";
    s.risk_reason = "reads form fields";
    s.page_types = {"checkout", "login"};
    inc.script = s;
    inc.actions = {{"read", "form_field", "2023-01-22T08:30:15.084Z", {{"field", "email"}, {"selector", "#email"}}},
                   {"network", std::nullopt, std::nullopt, {}}};
    inc.vulnerabilities = {{"jquery", "1.8.1", {"CVE-2012-6708", "CVE-2015-9251"}}, {"lodash", std::nullopt, {}}};
    inc.raw_json = R"({"id":"63cbd5e1a5b6c7d8e9f01234","category":"pii","risk_level":"high"})";
    return inc;
}

}  // namespace

TEST(HashPin, ContentHasherOfNothingIsTheFnvOffsetBasis) {
    EXPECT_EQ(content_hasher{}.value(), -3750763034362895579);  // 0xcbf29ce484222325
}

TEST(HashPin, ContentHasherOfStrings) {
    struct pin {
        std::vector<std::string_view> fields;
        std::int64_t expected;
    };
    const std::vector<pin> pins{
        {{""}, -5808391946409677970},
        {{"incident-sync"}, -2416414528080819290},
        {{"ab", "c"}, 2358367985974424609},
        {{"a", "bc"}, -6871556058050395989},  // the separator keeps field boundaries apart
        {{std::string_view("\x00\xff", 2)}, -2971189276162121939},
        {{"caf\xc3\xa9 \xe2\x98\x95"}, -3711973379279776495},
        {{"63cbd5e1a5b6c7d8e9f01234", "PXapp001", "shop.example.com", "pii"}, -1991450526406564035},
    };
    for (const auto& p : pins) {
        SCOPED_TRACE(testing::PrintToString(p.fields));
        content_hasher h;
        for (auto f : p.fields) h.add(f);
        EXPECT_EQ(h.value(), p.expected);
    }
}

TEST(HashPin, ContentHasherOfIntegersAndSeparators) {
    if (!little_endian) GTEST_SKIP() << "the pins hash integers' little-endian bytes";
    struct pin {
        std::int64_t value;
        std::int64_t expected;
    };
    for (const pin& p :
         {pin{0, -1872381190962463346}, pin{1, 5952038918994311073}, pin{2, 926085612787183464},
          pin{-1, 2883673608215945638}, pin{std::numeric_limits<std::int64_t>::min(), -1994541330878997490},
          pin{std::numeric_limits<std::int64_t>::max(), 3005833748132479782}}) {
        SCOPED_TRACE(p.value);
        content_hasher h;
        h.add(p.value);
        EXPECT_EQ(h.value(), p.expected);
    }
    content_hasher separator_only;
    separator_only.add_separator();
    EXPECT_EQ(separator_only.value(), -5808391946409677970);  // as add("")
    content_hasher mixed;
    mixed.add("x");
    mixed.add(std::int64_t{42});
    mixed.add_separator();
    mixed.add("y");
    EXPECT_EQ(mixed.value(), -9136218731903275916);
}

TEST(HashPin, HashBytesIsXxh3Of64Bits) {
    for (const auto& p : hash_bytes_pins()) {
        SCOPED_TRACE("input of " + std::to_string(p.input.size()) + " bytes");
        EXPECT_EQ(hash_bytes(p.input), p.expected);
    }
}

// The function the content-hash migration runs in SQL (store/database.cpp).
TEST(HashPin, SqlContentHashFunctionMatchesHashBytes) {
    isync::test::temp_dir dir;
    auto db = isync::store::open_database({dir.file("pin.db")}).value();
    SQLite::Statement st(*db, "SELECT isync_content_hash(?)");
    for (const auto& p : hash_bytes_pins()) {
        SCOPED_TRACE("input of " + std::to_string(p.input.size()) + " bytes");
        st.bind(1, p.input);
        ASSERT_TRUE(st.executeStep());
        EXPECT_EQ(st.getColumn(0).getInt64(), p.expected);
        st.reset();
    }
}

TEST(HashPin, HashesOfAFixedIncident) {
    if (!little_endian) GTEST_SKIP() << "the pins hash numbers' little-endian bytes";
    const incident inc = fixed_incident();
    const auto h = isync::store::hashes_of(inc);
    EXPECT_EQ(h.content, 440336600227566661);
    EXPECT_EQ(h.substance, -2444549629442341019);
    EXPECT_EQ(h.script, 3064622619812786410);
    EXPECT_EQ(isync::store::substance_hash(inc), h.substance);
    EXPECT_EQ(isync::store::script_hash(*inc.script), h.script);
}

TEST(HashPin, HashesOfAnIncidentWithOnlyAnId) {
    if (!little_endian) GTEST_SKIP() << "the pins hash numbers' little-endian bytes";
    incident inc;
    inc.id = "000000000000000000000001";
    inc.raw_json = R"({"id":"000000000000000000000001"})";
    const auto h = isync::store::hashes_of(inc);
    EXPECT_EQ(h.content, 37924252003200314);
    EXPECT_EQ(h.substance, -5998791304889026953);
    EXPECT_EQ(h.script, 0);  // no script
}
