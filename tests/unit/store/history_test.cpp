// Change history (incident_changes) and schema drift (unknown_fields).
#include "api/page_parser.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

namespace {

using isync::test::documented_example_incident_json;
using isync::test::page_body;
using isync::test::replace_once;

struct history_fixture {
    isync::test::temp_dir dir;
    std::unique_ptr<SQLite::Database> db =
        isync::store::open_database({dir.file("incidents.db"), std::chrono::seconds(1), false}).value();
    isync::store::incident_store store{*db, dir.file("incidents.db")};
    std::int64_t now_ms = 1'700'000'000'000;

    isync::store::upsert_counts commit(const std::string& incident_json) {
        auto page = isync::api::parse_page(page_body(1, {incident_json})).value();
        now_ms += 60'000;
        return store.commit_page(page.incidents, now_ms, nullptr, page.unknown_fields).value();
    }

    std::vector<std::array<std::string, 3>> changes() {
        std::vector<std::array<std::string, 3>> out;
        SQLite::Statement st(*db,
                             "SELECT field, COALESCE(old_value, 'NULL'), COALESCE(new_value, 'NULL') "
                             "FROM incident_history ORDER BY field");
        while (st.executeStep())
            out.push_back({st.getColumn(0).getString(), st.getColumn(1).getString(), st.getColumn(2).getString()});
        return out;
    }
};

}  // namespace

TEST(History, RepeatSyncOfUnchangedDataRecordsNothing) {
    history_fixture f;
    const auto json = documented_example_incident_json();
    f.commit(json);
    f.commit(json);
    EXPECT_TRUE(f.changes().empty());
}

TEST(History, OnlyLastSeenMovingRecordsNothing) {
    history_fixture f;
    const auto json = documented_example_incident_json();
    f.commit(json);
    EXPECT_EQ(f.commit(replace_once(json, R"("last_seen": "2023-01-22T08:30:15.084Z",
    "host_domain")",
                                    R"("last_seen": "2023-01-23T00:00:00.000Z",
    "host_domain")"))
                  .changed,
              1);
    EXPECT_TRUE(f.changes().empty());
}

TEST(History, RiskEscalationIsRecordedWithOldAndNewValue) {
    history_fixture f;
    const auto json = documented_example_incident_json();
    f.commit(replace_once(json, R"("risk_level": "high")", R"("risk_level": "low")"));
    f.commit(json);
    const auto changes = f.changes();
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0], (std::array<std::string, 3>{"risk_level", "low", "high"}));
    // ... and it shows in the last day's escalations (observed_at is "now" of the test clock, 2023).
    SQLite::Statement st(*f.db, "SELECT COUNT(*) FROM incident_changes WHERE field = 'risk_level'");
    st.executeStep();
    EXPECT_EQ(st.getColumn(0).getInt(), 1);
}

TEST(History, EveryTrackedFieldIsRecorded) {
    history_fixture f;
    const auto before = documented_example_incident_json();
    f.commit(before);
    std::string after = replace_once(before, R"("category": "pii")", R"("category": "pci")");
    after = replace_once(after, R"("under_review": false)", R"("under_review": true)");
    after = replace_once(after, R"("ack_updated_at": "2023-01-22T09:00:00.123Z")",
                         R"("ack_updated_at": "2023-01-23T09:00:00+01:00")");
    after = replace_once(after, R"("risk": {"level": "medium")", R"("risk": {"level": "critical")");
    after = replace_once(after, R"({"type": "dom", "subtype": "read_input")", R"({"type": "dom", "subtype": "keylog")");
    after = replace_once(after, R"("ids": ["CVE-2020-11022"])", R"("ids": ["CVE-2020-11022", "CVE-2020-11023"])");
    f.commit(after);
    const auto changes = f.changes();
    ASSERT_EQ(changes.size(), 6u) << ::testing::PrintToString(changes);
    EXPECT_EQ(changes[0],
              (std::array<std::string, 3>{"ack_updated_at", "2023-01-22T09:00:00.123Z", "2023-01-23T08:00:00.000Z"}));
    EXPECT_EQ(changes[1],
              (std::array<std::string, 3>{"actions", "dom/read_input, network/post", "dom/keylog, network/post"}));
    EXPECT_EQ(changes[2], (std::array<std::string, 3>{"category", "pii", "pci"}));
    EXPECT_EQ(changes[3], (std::array<std::string, 3>{"script_risk", "medium", "critical"}));
    EXPECT_EQ(changes[4], (std::array<std::string, 3>{"under_review", "false", "true"}));
    EXPECT_EQ(changes[5][0], "vulnerabilities");
    EXPECT_EQ(changes[5][1], "jquery@3.4.1 (CVE-2020-11022); lodash@4.17.20 (CVE-2020-28500, CVE-2021-23337)");
    EXPECT_EQ(changes[5][2],
              "jquery@3.4.1 (CVE-2020-11022, CVE-2020-11023); lodash@4.17.20 (CVE-2020-28500, CVE-2021-23337)");
}

TEST(History, RecentEscalationsViewShowsEscalationsNotDeescalations) {
    history_fixture f;
    // The view looks at the last day of the real clock: use the real now.
    f.now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count() -
        3'600'000;
    const auto json = documented_example_incident_json();
    f.commit(replace_once(json, R"("risk_level": "high")", R"("risk_level": "medium")"));
    f.commit(json);                                                                     // medium -> high: an escalation
    f.commit(replace_once(json, R"("risk_level": "high")", R"("risk_level": "low")"));  // high -> low: not one
    SQLite::Statement st(*f.db, "SELECT incident_id, old_value, new_value FROM recent_escalations");
    ASSERT_TRUE(st.executeStep());
    EXPECT_EQ(st.getColumn(0).getString(), std::string(isync::test::example_incident_id));
    EXPECT_EQ(st.getColumn(1).getString(), "medium");
    EXPECT_EQ(st.getColumn(2).getString(), "high");
    EXPECT_FALSE(st.executeStep());
}

TEST(SchemaDrift, UnknownFieldIsRecordedOnceWithAnExample) {
    history_fixture f;
    std::string json = replace_once(documented_example_incident_json(), R"("category": "pii",)",
                                    R"("category": "pii", "new_vendor_field": {"x": 1},)");
    json = replace_once(json, R"("risk": {"level": "medium",)", R"("risk": {"level": "medium", "score": 7,)");
    f.commit(json);
    f.commit(replace_once(json, "\"pii\"", "\"pci\""));  // seen again: no new row
    SQLite::Statement st(*f.db, "SELECT json_path, example_incident_id FROM unknown_fields ORDER BY json_path");
    std::vector<std::string> paths;
    while (st.executeStep()) {
        paths.push_back(st.getColumn(0).getString());
        EXPECT_EQ(st.getColumn(1).getString(), std::string(isync::test::example_incident_id));
    }
    EXPECT_EQ(paths, (std::vector<std::string>{"$.new_vendor_field", "$.script.risk.score"}));
    // The data itself is safe in raw_json.
    EXPECT_EQ(f.db->execAndGet("SELECT json_extract(raw_json, '$.new_vendor_field.x') FROM incidents").getInt(), 1);
}

TEST(SchemaDrift, KnownFieldsAreNotReported) {
    const auto page = isync::api::parse_page(page_body(1, {documented_example_incident_json()})).value();
    EXPECT_TRUE(page.unknown_fields.empty()) << page.unknown_fields.front().json_path;
}
