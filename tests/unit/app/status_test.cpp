// `incident-syncd status`: read_status over a real SQLite file written by the
// store, and the JSON it prints.

#include "app/status.hpp"

#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "support/test_support.hpp"
#include "util/timestamp.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using isync::errc;
using isync::app::format_status_json;
using isync::app::format_status_table;
using isync::app::pair_report;
using isync::app::read_status;
using isync::config::pair;
using isync::store::incident_store;
using isync::store::open_database;
using isync::store::slice_report;
using isync::test::contains;
using isync::test::documented_example_incident;
using isync::test::temp_dir;
using isync::util::format_iso8601_ms;

namespace {

constexpr std::int64_t minute = 60'000;
// 2023-01-22T15:00:00.000Z: the clock is a parameter, never the real one.
constexpr std::int64_t t0 = 1'674'399'600'000;

const pair synced{"PXabc123", "example.com"};
const pair failing{"PXdef456", "shop.example"};
const pair never{"PXnew789", "new.example"};

isync::model::incident incident_for(const pair& p, std::string id) {
    auto inc = documented_example_incident(id);
    inc.app_id = p.app_id;
    inc.host_domain = p.tld;
    return inc;
}

const pair_report* find(const std::vector<pair_report>& reports, const pair& p) {
    for (const auto& r : reports)
        if (r.pair == p) return &r;
    return nullptr;
}

// A database where `synced` committed a slice ending at t0 - 1 min (3
// incidents), `failing` stored 1 incident and then failed, `never` has nothing.
class StatusTest : public ::testing::Test {
protected:
    void SetUp() override {
        cfg_.database.path = dir_.file("incidents.db");
        cfg_.sync.interval = 5min;
        cfg_.sync.pairs = {synced, failing, never};

        auto db = open_database({cfg_.database.path});
        ASSERT_TRUE(db) << db.error().message;
        incident_store store(**db, cfg_.database.path);

        const std::vector<isync::model::incident> first{incident_for(synced, "63cbd5e1a5b6c7d8e9f00001"),
                                                        incident_for(synced, "63cbd5e1a5b6c7d8e9f00002")};
        const auto a = store.commit_page(first, t0 - 2 * minute);
        ASSERT_TRUE(a) << a.error().message;
        slice_report finish;
        finish.pair = synced;
        finish.from_ms = watermark_ - 60 * minute;
        finish.to_ms = watermark_;
        finish.started_ms = t0 - 2 * minute;
        finish.pages = 1;
        const std::vector<isync::model::incident> last{incident_for(synced, "63cbd5e1a5b6c7d8e9f00003")};
        const auto b = store.commit_page(last, success_at_, &finish);
        ASSERT_TRUE(b) << b.error().message;

        const std::vector<isync::model::incident> other{incident_for(failing, "63cbd5e1a5b6c7d8e9f00004")};
        const auto c = store.commit_page(other, t0 - 2 * minute);
        ASSERT_TRUE(c) << c.error().message;
        slice_report failed;
        failed.pair = failing;
        failed.from_ms = t0 - 60 * minute;
        failed.to_ms = t0 - minute;
        failed.started_ms = t0 - minute;
        const auto f = store.record_failure(failed, error_text_, error_at_, /*auth_failure=*/false);
        ASSERT_TRUE(f) << f.error().message;
    }

    temp_dir dir_;
    isync::config::config cfg_;
    const std::int64_t watermark_ = t0 - minute;
    const std::int64_t success_at_ = t0 - 30'000;
    const std::int64_t error_at_ = t0 - 10'000;
    const std::string error_text_ = "HTTP 503 from https://api-gw.perimeterx.com/v1/incidents after 6 attempts";
};

}  // namespace

TEST_F(StatusTest, ReportsWatermarkLastSuccessLastErrorAndCountsPerPair) {
    const auto reports = read_status(cfg_, t0);
    ASSERT_TRUE(reports) << reports.error().message;
    ASSERT_EQ(reports->size(), 3u);

    const auto* s = find(*reports, synced);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->watermark, format_iso8601_ms(watermark_));
    EXPECT_EQ(s->last_success_at, format_iso8601_ms(success_at_));
    EXPECT_FALSE(s->last_error);
    EXPECT_FALSE(s->last_error_at);
    EXPECT_FALSE(s->auth_failing);
    EXPECT_EQ(s->incidents, 3);
    EXPECT_TRUE(s->healthy);

    const auto* f = find(*reports, failing);
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->watermark);
    EXPECT_FALSE(f->last_success_at);
    EXPECT_EQ(f->last_error, error_text_);
    EXPECT_EQ(f->last_error_at, format_iso8601_ms(error_at_));
    EXPECT_EQ(f->incidents, 1);
    EXPECT_FALSE(f->healthy);
}

TEST_F(StatusTest, ConfiguredPairNeverSyncedIsUnhealthyWithoutWatermark) {
    const auto reports = read_status(cfg_, t0);
    ASSERT_TRUE(reports) << reports.error().message;
    const auto* n = find(*reports, never);
    ASSERT_TRUE(n) << "a configured pair with no sync_state row must still be reported";
    EXPECT_FALSE(n->watermark);
    EXPECT_FALSE(n->last_success_at);
    EXPECT_FALSE(n->last_error);
    EXPECT_EQ(n->incidents, 0);
    EXPECT_FALSE(n->healthy);
}

TEST_F(StatusTest, HealthyMeansSuccessWithinThreeIntervals) {
    const std::int64_t limit = success_at_ + 3 * 5 * minute;
    {
        const auto reports = read_status(cfg_, limit);
        ASSERT_TRUE(reports) << reports.error().message;
        EXPECT_TRUE(find(*reports, synced)->healthy) << "exactly three intervals after the success";
    }
    {
        const auto reports = read_status(cfg_, limit + 1);
        ASSERT_TRUE(reports) << reports.error().message;
        EXPECT_FALSE(find(*reports, synced)->healthy) << "three intervals and 1 ms after the success";
    }
    {
        cfg_.sync.interval = 1min;  // the same success is stale for a faster schedule
        const auto reports = read_status(cfg_, success_at_ + 4 * minute);
        ASSERT_TRUE(reports) << reports.error().message;
        EXPECT_FALSE(find(*reports, synced)->healthy);
    }
}

TEST_F(StatusTest, FailingAuthIsUnhealthyEvenAfterARecentSuccess) {
    {
        auto db = open_database({cfg_.database.path});
        ASSERT_TRUE(db) << db.error().message;
        incident_store store(**db, cfg_.database.path);
        slice_report r;
        r.pair = synced;
        ASSERT_TRUE(store.record_failure(r, "the API refused the token (HTTP 401)", t0 - 1000, /*auth_failure=*/true));
    }
    const auto reports = read_status(cfg_, t0);
    ASSERT_TRUE(reports) << reports.error().message;
    const auto* s = find(*reports, synced);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->auth_failing);
    EXPECT_FALSE(s->healthy);
    EXPECT_EQ(s->watermark, format_iso8601_ms(watermark_)) << "a failure never moves the watermark";
    EXPECT_TRUE(contains(format_status_table(*reports), "[auth failing]"));
}

TEST_F(StatusTest, PairsOnlyTheDatabaseKnowsAreReportedToo) {
    cfg_.sync.pairs = {never};  // `synced` and `failing` were removed from the configuration
    const auto reports = read_status(cfg_, t0);
    ASSERT_TRUE(reports) << reports.error().message;
    EXPECT_EQ(reports->size(), 3u);
    ASSERT_TRUE(find(*reports, synced));
    EXPECT_EQ(find(*reports, synced)->incidents, 3);
    EXPECT_TRUE(find(*reports, failing));
}

TEST_F(StatusTest, WithDiscoveryAndNoDaemonEveryStoredPairIsJudgedNoneRemoved) {
    cfg_.sync.pairs = {never};
    cfg_.sync.discover = true;  // the pairs polled are the API's: without a daemon, judge all the database knows
    const auto reports = read_status(cfg_, t0);
    ASSERT_TRUE(reports) << reports.error().message;
    ASSERT_TRUE(find(*reports, synced));
    EXPECT_TRUE(find(*reports, synced)->configured);
    EXPECT_TRUE(find(*reports, failing)->configured);
    cfg_.sync.discover = false;
    const auto without = read_status(cfg_, t0);
    ASSERT_TRUE(without) << without.error().message;
    EXPECT_FALSE(find(*without, synced)->configured) << "without discovery, a pair not in sync.pairs is removed";
}

TEST_F(StatusTest, JsonIsValidAndCarriesEveryField) {
    const auto reports = read_status(cfg_, t0);
    ASSERT_TRUE(reports) << reports.error().message;
    const std::string json = format_status_json(*reports);

    rapidjson::Document doc;
    doc.Parse(json.c_str(), json.size());
    ASSERT_FALSE(doc.HasParseError()) << "offset " << doc.GetErrorOffset() << " in " << json;
    ASSERT_TRUE(doc.IsObject());
    ASSERT_TRUE(doc.HasMember("pairs"));
    ASSERT_TRUE(doc["pairs"].IsArray());
    ASSERT_EQ(doc["pairs"].Size(), 3u);

    bool saw_synced = false, saw_failing = false, saw_never = false;
    for (const auto& p : doc["pairs"].GetArray()) {
        ASSERT_TRUE(p.IsObject());
        for (const char* key : {"app_id", "tld", "watermark", "last_success_at", "last_error_at", "last_error",
                                "auth_failing", "incidents", "healthy"})
            ASSERT_TRUE(p.HasMember(key)) << key << " missing in " << json;
        const std::string app = p["app_id"].GetString();
        if (app == synced.app_id) {
            saw_synced = true;
            EXPECT_EQ(std::string(p["tld"].GetString()), synced.tld);
            ASSERT_TRUE(p["watermark"].IsString());
            EXPECT_EQ(std::string(p["watermark"].GetString()), format_iso8601_ms(watermark_));
            ASSERT_TRUE(p["last_success_at"].IsString());
            EXPECT_EQ(std::string(p["last_success_at"].GetString()), format_iso8601_ms(success_at_));
            EXPECT_TRUE(p["last_error"].IsNull());
            EXPECT_EQ(p["incidents"].GetInt64(), 3);
            EXPECT_TRUE(p["healthy"].GetBool());
            EXPECT_FALSE(p["auth_failing"].GetBool());
        } else if (app == failing.app_id) {
            saw_failing = true;
            EXPECT_TRUE(p["watermark"].IsNull());
            ASSERT_TRUE(p["last_error"].IsString());
            EXPECT_EQ(std::string(p["last_error"].GetString()), error_text_);
            ASSERT_TRUE(p["last_error_at"].IsString());
            EXPECT_EQ(std::string(p["last_error_at"].GetString()), format_iso8601_ms(error_at_));
            EXPECT_EQ(p["incidents"].GetInt64(), 1);
            EXPECT_FALSE(p["healthy"].GetBool());
        } else if (app == never.app_id) {
            saw_never = true;
            EXPECT_TRUE(p["watermark"].IsNull());
            EXPECT_TRUE(p["last_success_at"].IsNull());
            EXPECT_EQ(p["incidents"].GetInt64(), 0);
            EXPECT_FALSE(p["healthy"].GetBool());
        }
    }
    EXPECT_TRUE(saw_synced && saw_failing && saw_never) << json;
}

TEST(StatusJson, EscapesErrorTextSoItStaysValidJson) {
    pair_report r;
    r.pair = {"PX\"q", "a\\b.example"};
    r.last_error = "line one\nline \"two\"\t\x01";
    const std::string json = format_status_json({r});
    rapidjson::Document doc;
    doc.Parse(json.c_str(), json.size());
    ASSERT_FALSE(doc.HasParseError()) << json;
    EXPECT_EQ(std::string(doc["pairs"][0]["last_error"].GetString()), *r.last_error);
    EXPECT_EQ(std::string(doc["pairs"][0]["app_id"].GetString()), r.pair.app_id);
}

TEST(StatusRead, MissingDatabaseFailsNamingThePathAndCreatesNothing) {
    temp_dir dir;
    isync::config::config cfg;
    cfg.database.path = dir.file("no-such.db");
    cfg.sync.pairs = {synced};
    const auto r = read_status(cfg, t0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::database);
    EXPECT_TRUE(contains(r.error().message, cfg.database.path));
    EXPECT_FALSE(std::filesystem::exists(cfg.database.path)) << "status must never create the database";
}

TEST(StatusRead, FileWithoutTheSchemaFailsNamingThePath) {
    temp_dir dir;
    isync::config::config cfg;
    cfg.database.path = dir.file("empty.db");
    std::ofstream(cfg.database.path).close();  // an empty file is an empty SQLite database
    const auto r = read_status(cfg, t0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::database);
    EXPECT_TRUE(contains(r.error().message, cfg.database.path));
}
