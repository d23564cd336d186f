// log::parse_level: the five documented levels, and errc::config for anything else.

#include "log/logging.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

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
