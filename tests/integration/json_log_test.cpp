// `log.format: json` in the daemon itself: `incident-syncd once` at debug
// level against an API that is not there (https://127.0.0.1:9, connection
// refused), with a canary token. Every line it writes to stderr must be one
// JSON object, and the token must be in none of them. (The formatter's own
// escaping is tested in tests/unit/log/logging_test.cpp.)
#include "support/subprocess.hpp"
#include "support/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Whether some string value of `v`, at any depth, contains `needle`.
bool mentions(const rapidjson::Value& v, std::string_view needle) {
    if (v.IsString())
        return std::string_view(v.GetString(), v.GetStringLength()).find(needle) != std::string_view::npos;
    if (v.IsObject())
        for (const auto& m : v.GetObject())
            if (mentions(m.value, needle)) return true;
    if (v.IsArray())
        for (const auto& e : v.GetArray())
            if (mentions(e, needle)) return true;
    return false;
}

}  // namespace

TEST(JsonLogDaemon, EveryStderrLineIsOneJsonObjectAndNoneHoldsTheToken) {
    const std::string canary = "CANARY-json-log-5d1c-token";
    isync::test::temp_dir dir;
    { std::ofstream(dir.file("token"), std::ios::trunc) << canary << "\n"; }
    ::chmod(dir.file("token").c_str(), 0600);
    {
        std::ofstream(dir.file("incident-sync.yaml"), std::ios::trunc) << fmt::format(
            "api:\n"
            "  base_url: https://127.0.0.1:9\n"
            "  token_file: {}\n"
            "retry:\n"
            "  max_attempts: 1\n"
            "sync:\n"
            "  pairs:\n"
            "    - {{ app_id: PXa, tld: a.example }}\n"
            "    - {{ app_id: PXb, tld: b.example }}\n"
            "database:\n"
            "  path: {}\n"
            "log:\n"
            "  format: json\n"
            "metrics:\n"
            "  listen: 127.0.0.1:0\n",
            dir.file("token"), dir.file("incidents.db"));
    }
    const int status = test_support::run_process(
        {INCIDENT_SYNCD_PATH, "once", "--config", dir.file("incident-sync.yaml"), "--log-level", "debug"}, dir.path(),
        "once", std::chrono::seconds(60));
    const std::string err = test_support::read_file(dir.path() / "once.stderr");
    const std::string out = test_support::read_file(dir.path() / "once.stdout");
    EXPECT_EQ(status, 1) << "the pass must fail: nothing listens on 127.0.0.1:9\n" << err;

    ASSERT_FALSE(err.empty());
    ASSERT_EQ(err.back(), '\n') << "the last line is cut short";
    std::size_t lines = 0;
    bool names_the_failure = false;
    std::size_t start = 0;
    while (start < err.size()) {
        const auto end = err.find('\n', start);
        const std::string line = err.substr(start, end - start);
        start = end + 1;
        ++lines;
        rapidjson::Document doc;
        doc.Parse<rapidjson::kParseIterativeFlag>(line.data(), line.size());
        ASSERT_FALSE(doc.HasParseError()) << "stderr line " << lines << " is not JSON ("
                                          << rapidjson::GetParseError_En(doc.GetParseError()) << "): " << line;
        ASSERT_TRUE(doc.IsObject()) << "stderr line " << lines << ": " << line;
        names_the_failure = names_the_failure || mentions(doc, "127.0.0.1:9");
    }
    // Start-up at debug level, one failure per pair and the verdict: a log
    // of a line or two would mean the error paths were not logged at all.
    EXPECT_GE(lines, 3u) << err;
    EXPECT_TRUE(names_the_failure) << "no line names the unreachable API:\n" << err;

    EXPECT_EQ(err.find(canary), std::string::npos) << err;
    EXPECT_EQ(out.find(canary), std::string::npos) << out;
    EXPECT_EQ(err.find("CANARY"), std::string::npos);
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        if (entry.path().filename() == "token") continue;
        EXPECT_EQ(test_support::read_file(entry.path()).find(canary), std::string::npos) << entry.path();
    }
}

// ------------------------------------------------------------------ fields

#include "support/daemon_fixture.hpp"

namespace {

// Every stderr line of `f`'s run `name`, parsed.
std::vector<rapidjson::Document> json_lines(const test_support::daemon_fixture& f, const std::string& name) {
    std::vector<rapidjson::Document> out;
    std::istringstream in(test_support::read_file(f.dir().path() / (name + ".stderr")));
    for (std::string line; std::getline(in, line);) {
        rapidjson::Document d;
        d.Parse(line.c_str());
        EXPECT_FALSE(d.HasParseError()) << line;
        if (!d.HasParseError() && d.IsObject()) out.push_back(std::move(d));
    }
    return out;
}

const rapidjson::Document* line_with(const std::vector<rapidjson::Document>& lines, const char* pair,
                                     const char* status) {
    for (const auto& d : lines)
        if (d.HasMember("pair") && d["pair"].IsString() && d["pair"].GetString() == std::string(pair) &&
            d.HasMember("status") && d["status"].IsString() && d["status"].GetString() == std::string(status))
            return &d;
    return nullptr;
}

}  // namespace

// log.format: json carries fields, not only a message: one spelling of a
// pair (appId/tld), the slice, what the poll did, how it ended and why.
TEST(JsonLogDaemon, PollLinesCarryPairSliceCountsStatusAndError) {
    test_support::daemon_options o;
    o.incidents = 500;
    o.log_format = "json";
    o.refused_app_ids = {{"PXsim001", fake_api::app_refusal::invalid}};
    test_support::daemon_fixture f(o);
    EXPECT_EQ(f.run("once", "once"), 1) << f.output("once");
    const auto lines = json_lines(f, "once");

    const auto* ok = line_with(lines, "PXsim000/site000.example", "ok");
    ASSERT_NE(ok, nullptr) << f.output("once");
    for (const char* key : {"new", "changed", "unchanged", "read", "slice_from", "slice_to"})
        EXPECT_TRUE(ok->HasMember(key) && (*ok)[key].IsInt64()) << key;
    EXPECT_GT((*ok)["new"].GetInt64(), 0);
    EXPECT_LT((*ok)["slice_from"].GetInt64(), (*ok)["slice_to"].GetInt64());

    const auto* failed = line_with(lines, "PXsim001/site001.example", "failed");
    ASSERT_NE(failed, nullptr) << f.output("once");
    ASSERT_TRUE(failed->HasMember("error") && (*failed)["error"].IsString());
    EXPECT_NE(std::string((*failed)["error"].GetString()).find("Invalid appId PXsim001"), std::string::npos);
    // `once` promises no next interval.
    EXPECT_EQ(f.output("once").find("next interval"), std::string::npos);
}
