// `incident-syncd export`: JSON lines from a real SQLite file written by the
// store, read back line by line and compared with the database.

#include "app/arguments.hpp"
#include "app/export_jsonl.hpp"

#include "api/page_parser.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "support/test_support.hpp"
#include "util/timestamp.hpp"

#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using isync::app::export_jsonl;
using isync::app::export_options;
using isync::test::documented_example_incident_json;
using isync::test::page_body;
using isync::test::replace_once;

namespace {

constexpr std::int64_t hour = 3'600'000;
constexpr std::int64_t t0 = 1'674'399'600'000;  // 2023-01-22T15:00:00.000Z

std::string hex_id(int i) { return fmt::format("{:024x}", i); }

class ExportJsonl : public ::testing::Test {
protected:
    // Incidents `ids` as one page, received at `at_ms`, with `risk`.
    void commit(const std::vector<std::string>& ids, std::int64_t at_ms, const char* risk = "high") {
        std::vector<std::string> bodies;
        for (const auto& id : ids)
            bodies.push_back(replace_once(documented_example_incident_json(id), R"("risk_level": "high")",
                                          fmt::format(R"("risk_level": "{}")", risk)));
        std::string page = page_body(static_cast<std::int64_t>(ids.size()), {});
        std::string data;
        for (const auto& b : bodies) data += (data.empty() ? "" : ", ") + b;
        page = replace_once(page, R"("data": [])", R"("data": [)" + data + "]");
        auto parsed = isync::api::parse_page(page).value();
        ASSERT_TRUE(store_.commit_page(parsed.incidents, at_ms).has_value());
    }

    // The export's lines (nullopt and the error's message when it failed).
    std::vector<std::string> lines(export_options o) {
        o.database_path = path_;
        std::unique_ptr<std::FILE, decltype(&std::fclose)> out(std::tmpfile(), &std::fclose);
        auto done = export_jsonl(o, out.get());
        EXPECT_TRUE(done.has_value()) << (done ? "" : done.error().message);
        std::rewind(out.get());
        std::vector<std::string> result;
        std::string line;
        for (int c; (c = std::fgetc(out.get())) != EOF;) {
            if (c == '\n') {
                result.push_back(std::move(line));
                line.clear();
            } else {
                line += static_cast<char>(c);
            }
        }
        EXPECT_TRUE(line.empty()) << "the last line has no newline";
        if (done) {
            EXPECT_EQ(done->lines, static_cast<std::int64_t>(result.size()));
        }
        return result;
    }

    static rapidjson::Document parse(const std::string& line) {
        rapidjson::Document d;
        d.Parse(line.c_str(), line.size());
        EXPECT_FALSE(d.HasParseError()) << line;
        EXPECT_TRUE(d.IsObject()) << line;
        return d;
    }

    isync::test::temp_dir dir_;
    std::string path_ = dir_.file("incidents.db");
    std::unique_ptr<SQLite::Database> db_ =
        isync::store::open_database({path_, std::chrono::seconds(1), false}).value();
    isync::store::incident_store store_{*db_, path_};
};

}  // namespace

TEST_F(ExportJsonl, EveryIncidentIsOneLineCarryingItsStoredBytesAndSyncTimes) {
    std::vector<std::string> ids;
    for (int i = 1; i <= 30; ++i) ids.push_back(hex_id(i));
    commit(ids, t0);
    const auto out = lines({});
    ASSERT_EQ(out.size(), 30u);

    std::map<std::string, std::array<std::string, 6>> stored;  // id -> app, domain, 3 times, raw_json
    SQLite::Statement st(*db_,
                         "SELECT id, app_id, host_domain, first_synced_at, last_synced_at, "
                         "content_changed_at, raw_json FROM incidents");
    while (st.executeStep())
        stored[st.getColumn(0).getString()] = {st.getColumn(1).getString(), st.getColumn(2).getString(),
                                               st.getColumn(3).getString(), st.getColumn(4).getString(),
                                               st.getColumn(5).getString(), st.getColumn(6).getString()};
    std::set<std::string> seen;
    for (const auto& line : out) {
        const auto d = parse(line);
        const std::string id = d["id"].GetString();
        ASSERT_TRUE(stored.contains(id)) << id;
        const auto& row = stored[id];
        EXPECT_EQ(d["app_id"].GetString(), row[0]);
        EXPECT_EQ(d["host_domain"].GetString(), row[1]);
        EXPECT_EQ(d["first_synced_at"].GetString(), row[2]);
        EXPECT_EQ(d["last_synced_at"].GetString(), row[3]);
        EXPECT_EQ(d["content_changed_at"].GetString(), row[4]);
        // The incident is the stored bytes themselves, not a re-encoding,
        // but for its line breaks (whitespace between tokens) made spaces.
        std::string one_line = row[5];
        ASSERT_NE(one_line.find('\n'), std::string::npos);  // the fixture is pretty-printed
        std::replace(one_line.begin(), one_line.end(), '\n', ' ');
        EXPECT_NE(line.find(R"("incident":)" + one_line + "}"), std::string::npos) << line;
        EXPECT_EQ(std::string(d["incident"]["id"].GetString()), id);
        seen.insert(id);
    }
    EXPECT_EQ(seen.size(), 30u);  // each once
}

TEST_F(ExportJsonl, SinceKeepsOnlyIncidentsReceivedNewOrChangedFromThen) {
    commit({hex_id(1), hex_id(2), hex_id(3)}, t0);
    commit({hex_id(4), hex_id(5)}, t0 + 2 * hour);
    commit({hex_id(1)}, t0 + 3 * hour, "low");  // a new version of 1
    export_options o;
    o.since_ms = t0 + hour;
    std::set<std::string> ids;
    for (const auto& line : lines(o)) ids.insert(parse(line)["id"].GetString());
    EXPECT_EQ(ids, (std::set<std::string>{hex_id(1), hex_id(4), hex_id(5)}));
    o.since_ms = t0 + 4 * hour;
    EXPECT_TRUE(lines(o).empty());
}

TEST_F(ExportJsonl, ChangesAreTheHistoryInTheOrderObserved) {
    commit({hex_id(1), hex_id(2)}, t0, "low");
    commit({hex_id(1)}, t0 + hour, "high");
    commit({hex_id(2)}, t0 + 2 * hour, "critical");
    export_options o;
    o.changes = true;
    const auto out = lines(o);
    ASSERT_EQ(out.size(), 2u);
    const auto first = parse(out[0]), second = parse(out[1]);
    EXPECT_EQ(std::string(first["incident_id"].GetString()), hex_id(1));
    EXPECT_EQ(std::string(first["field"].GetString()), "risk_level");
    EXPECT_EQ(std::string(first["old_value"].GetString()), "low");
    EXPECT_EQ(std::string(first["new_value"].GetString()), "high");
    EXPECT_EQ(std::string(first["observed_at"].GetString()), isync::util::format_iso8601_ms(t0 + hour));
    EXPECT_EQ(std::string(second["incident_id"].GetString()), hex_id(2));
    EXPECT_EQ(std::string(second["new_value"].GetString()), "critical");
    EXPECT_LT(first["change_id"].GetInt64(), second["change_id"].GetInt64());
    o.since_ms = t0 + 90 * 60'000;
    const auto later = lines(o);
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(std::string(parse(later[0])["incident_id"].GetString()), hex_id(2));
}

TEST_F(ExportJsonl, AMissingDatabaseIsAClearErrorAndNothingIsCreated) {
    export_options o;
    o.database_path = dir_.file("nowhere.db");
    std::unique_ptr<std::FILE, decltype(&std::fclose)> out(std::tmpfile(), &std::fclose);
    auto done = export_jsonl(o, out.get());
    ASSERT_FALSE(done.has_value());
    EXPECT_EQ(done.error().code, isync::errc::database);
    EXPECT_NE(done.error().message.find("nowhere.db"), std::string::npos) << done.error().message;
    EXPECT_FALSE(std::filesystem::exists(o.database_path));
}

TEST_F(ExportJsonl, AReaderThatGoesAwayEndsTheExportQuietly) {
    std::vector<std::string> ids;
    for (int i = 1; i <= 100; ++i) ids.push_back(hex_id(i));  // ~200 KB: more than a pipe holds
    commit(ids, t0);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ::close(fds[0]);  // `| head` that has already gone
    const auto previous = std::signal(SIGPIPE, SIG_IGN);
    std::unique_ptr<std::FILE, decltype(&std::fclose)> out(::fdopen(fds[1], "w"), &std::fclose);
    export_options o;
    o.database_path = path_;
    auto done = export_jsonl(o, out.get());
    std::signal(SIGPIPE, previous);
    ASSERT_TRUE(done.has_value()) << done.error().message;
    EXPECT_TRUE(done->reader_went_away);
    EXPECT_LT(done->lines, 100);
}

TEST(ExportSince, TakesAnIsoTimeOrADurationBackFromNow) {
    EXPECT_EQ(isync::util::parse_time_or_ago("2023-01-22T15:00:00Z", 0), t0);
    EXPECT_EQ(isync::util::parse_time_or_ago("24h", t0), t0 - 24 * hour);
    EXPECT_EQ(isync::util::parse_time_or_ago("7d", t0), t0 - 7 * 24 * hour);
    EXPECT_FALSE(isync::util::parse_time_or_ago("yesterday", t0).has_value());
    EXPECT_FALSE(isync::util::parse_time_or_ago("2023-01-22", t0).has_value());
}

TEST(ExportArguments, BelongToTheExportCommand) {
    using isync::app::parse_arguments;
    auto ok = parse_arguments({"incident-syncd", "export", "--database", "x.db", "--since", "24h", "--changes"});
    ASSERT_TRUE(ok.has_value()) << ok.error().message;
    EXPECT_EQ(ok->cmd, isync::app::command::export_lines);
    EXPECT_EQ(ok->since, "24h");
    EXPECT_TRUE(ok->changes);
    EXPECT_EQ(ok->database, "x.db");
    auto csv = parse_arguments({"incident-syncd", "export", "--format", "csv"});
    ASSERT_FALSE(csv.has_value());
    EXPECT_NE(csv.error().message.find("jsonl"), std::string::npos);
    EXPECT_FALSE(parse_arguments({"incident-syncd", "status", "--changes"}).has_value());
    EXPECT_FALSE(parse_arguments({"incident-syncd", "once", "--database", "x.db"}).has_value());
    EXPECT_FALSE(parse_arguments({"incident-syncd", "export", "--database", "x.db", "--config", "c.yaml"}).has_value());
}

TEST(ResyncArguments, TakeOnePairOrAllAndAStart) {
    using isync::app::parse_arguments;
    auto one = parse_arguments(
        {"incident-syncd", "resync", "PXabc/example.com", "--from", "7d", "--to", "2026-12-01T00:00:00Z"});
    ASSERT_TRUE(one.has_value()) << one.error().message;
    EXPECT_EQ(one->cmd, isync::app::command::resync);
    EXPECT_EQ(one->pair, "PXabc/example.com");
    EXPECT_EQ(one->from, "7d");
    EXPECT_EQ(one->to, "2026-12-01T00:00:00Z");
    auto all = parse_arguments({"incident-syncd", "resync", "--all", "--from=24h"});
    ASSERT_TRUE(all.has_value()) << all.error().message;
    EXPECT_TRUE(all->all_pairs);
    EXPECT_FALSE(all->to.has_value());
    for (const auto& bad : std::vector<std::vector<std::string>>{
             {"incident-syncd", "resync", "--from", "7d"},                                // no pair, no --all
             {"incident-syncd", "resync", "PXabc/example.com", "--all", "--from", "7d"},  // both
             {"incident-syncd", "resync", "PXabc/example.com"},                           // no --from
             {"incident-syncd", "resync", "PXabc", "--from", "7d"},                       // not APP/TLD
             {"incident-syncd", "once", "--from", "7d"}}) {                               // not resync
        auto r = parse_arguments(bad);
        EXPECT_FALSE(r.has_value()) << ::testing::PrintToString(bad);
        if (!r) {
            EXPECT_EQ(r.error().code, isync::errc::usage);
        }
    }
}

TEST(ExportArguments, AMissingDatabaseSaysHowOneIsMadeAndCreatesNothing) {
    isync::test::temp_dir dir;
    isync::app::export_options options;
    options.database_path = dir.file("no-such.db");
    const auto r = isync::app::export_jsonl(options, stdout);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, isync::errc::database);
    EXPECT_NE(r.error().message.find("no database yet at " + options.database_path), std::string::npos)
        << r.error().message;
    EXPECT_FALSE(std::filesystem::exists(options.database_path)) << "export must never create the database";
}
