// `log.format: json` in the daemon itself: `incident-syncd once` at debug
// level against an API that is not there (https://127.0.0.1:9, connection
// refused), with a canary token. Every line it writes to stderr must be one
// JSON object, and the token must be in none of them. (The formatter's own
// escaping is tested in tests/unit/logging_test.cpp.)
#include "support/subprocess.hpp"
#include "support/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
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
    {
        std::ofstream(dir.file("token"), std::ios::trunc) << canary << "\n";
    }
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
