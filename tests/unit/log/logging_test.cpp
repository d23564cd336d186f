// log::parse_level: the five documented levels, and errc::config for anything else.
// log::init with `json`: one JSON object per line, control characters escaped,
// read back from the real stderr sink (fd 2 redirected to a file for the test).

#include "log/logging.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using isync::errc;
using isync::log::parse_level;
using isync::test::contains;

TEST(ParseLevel, EveryDocumentedLevel) {
    using spdlog::level::level_enum;
    struct row {
        const char* text;
        level_enum level;
    };
    for (const row r : {row{"trace", level_enum::trace}, row{"debug", level_enum::debug}, row{"info", level_enum::info},
                        row{"warn", level_enum::warn}, row{"error", level_enum::err}}) {
        SCOPED_TRACE(r.text);
        const auto l = parse_level(r.text);
        ASSERT_TRUE(l) << l.error().message;
        EXPECT_EQ(*l, r.level);
    }
}

TEST(ParseLevel, AnythingElseIsAConfigErrorThatListsTheLevels) {
    for (const char* text : {"verbose", "", "off", "critical", "err", "warning", "info "}) {
        SCOPED_TRACE(text);
        const auto l = parse_level(text);
        ASSERT_FALSE(l);
        EXPECT_EQ(l.error().code, errc::config);
        EXPECT_TRUE(contains(l.error().message, "\"" + std::string(text) + "\""));
        EXPECT_TRUE(contains(l.error().message, "trace, debug, info, warn, error"));
    }
}

namespace {

// Sends this process's stderr (fd 2, where log::init's sink writes) to a file
// until finish(), which returns what was written. Puts the previous default
// logger and stderr back however the test ends.
class captured_stderr {
public:
    explicit captured_stderr(std::string path) : path_(std::move(path)) {
        std::fflush(stderr);
        saved_ = ::dup(2);
        const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (saved_ < 0 || fd < 0 || ::dup2(fd, 2) < 0) throw std::runtime_error("cannot redirect stderr to " + path_);
        ::close(fd);
    }
    ~captured_stderr() {
        restore();
        spdlog::set_default_logger(previous_);
    }
    captured_stderr(const captured_stderr&) = delete;
    captured_stderr& operator=(const captured_stderr&) = delete;

    std::string finish() {
        restore();
        std::ifstream in(path_, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }

    std::string path_;
    int saved_ = -1;
    std::shared_ptr<spdlog::logger> previous_ = spdlog::default_logger();
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        if (end == std::string::npos) {
            lines.push_back(text.substr(start));  // no final newline: shown as a line of its own
            break;
        }
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// Whether some string value of `object`, at any depth, is exactly `message`
// (whatever the field is called, and whatever other fields a line carries).
bool holds_string(const rapidjson::Value& v, std::string_view message) {
    if (v.IsString()) return std::string_view(v.GetString(), v.GetStringLength()) == message;
    if (v.IsObject())
        for (const auto& m : v.GetObject())
            if (holds_string(m.value, message)) return true;
    if (v.IsArray())
        for (const auto& e : v.GetArray())
            if (holds_string(e, message)) return true;
    return false;
}

// Each line of `text` is one JSON object holding the matching message of
// `messages` as a string, and no raw control character.
::testing::AssertionResult one_object_per_message(const std::string& text, const std::vector<std::string>& messages) {
    const auto lines = lines_of(text);
    if (text.empty() || text.back() != '\n')
        return ::testing::AssertionFailure() << "the log is empty or its last line is cut short";
    if (lines.size() != messages.size())
        return ::testing::AssertionFailure() << lines.size() << " lines for " << messages.size() << " messages:\n"
                                             << text;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto& line = lines[i];
        for (unsigned char c : line)
            if (c < 0x20)
                return ::testing::AssertionFailure() << "line " << i << " holds raw byte " << int(c) << ": " << line;
        rapidjson::Document doc;
        doc.Parse<rapidjson::kParseIterativeFlag>(line.data(), line.size());
        if (doc.HasParseError())
            return ::testing::AssertionFailure()
                   << "line " << i << " is not JSON (" << rapidjson::GetParseError_En(doc.GetParseError()) << " at "
                   << doc.GetErrorOffset() << "): " << line;
        if (!doc.IsObject()) return ::testing::AssertionFailure() << "line " << i << " is not an object: " << line;
        if (!holds_string(doc, messages[i]))
            return ::testing::AssertionFailure()
                   << "line " << i << " does not carry message " << i << " exactly: " << line;
    }
    return ::testing::AssertionSuccess();
}

}  // namespace

TEST(JsonLog, EveryMessageIsOneObjectOnItsOwnLine) {
    isync::test::temp_dir dir;
    std::vector<std::string> messages{
        "a plain message",
        "quotes \" and backslashes \\ and a slash /",
        "two\nlines",
        "a CRLF\r\nin the middle",
        "{\"looks\": \"like JSON\"}",
        "UTF-8: caf\xc3\xa9 \xe2\x98\x95",
        "",
        std::string("a NUL \0 inside", 14),  // the NUL and what follows it
    };
    captured_stderr err(dir.file("stderr"));
    isync::log::init(spdlog::level::trace, "json");
    // Every level, and each message through fmt's "{}" as the code logs text it did not write.
    const spdlog::level::level_enum levels[] = {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                                                spdlog::level::warn,  spdlog::level::err,   spdlog::level::critical};
    for (std::size_t i = 0; i < messages.size(); ++i) spdlog::log(levels[i % std::size(levels)], "{}", messages[i]);
    const std::string text = err.finish();
    EXPECT_TRUE(one_object_per_message(text, messages));
}

TEST(JsonLog, EveryControlCharacterIsEscaped) {
    isync::test::temp_dir dir;
    std::vector<std::string> messages;
    for (int c = 0; c < 0x20; ++c) messages.push_back("before " + std::string(1, static_cast<char>(c)) + " after");
    messages.push_back("DEL \x7f and every one at once: " + [] {
        std::string all;
        for (int c = 0; c < 0x20; ++c) all.push_back(static_cast<char>(c));
        return all;
    }());
    captured_stderr err(dir.file("stderr"));
    isync::log::init(spdlog::level::info, "json");
    for (const auto& m : messages) spdlog::info("{}", m);
    const std::string text = err.finish();
    // one_object_per_message refuses a raw byte below 0x20 on any line, and
    // wants each message back exactly once parsed: escaped, not dropped.
    EXPECT_TRUE(one_object_per_message(text, messages));
}
