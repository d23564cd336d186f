// util/text: the one trim, join, case and escape helpers every layer uses.
#include "util/text.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

using namespace isync::util;

TEST(Text, TrimRemovesAsciiWhitespaceAtBothEndsOnly) {
    EXPECT_EQ(trim("  a b\t\r\n"), "a b");
    EXPECT_EQ(trim("\v\fx"), "x");
    EXPECT_EQ(trim(" \t "), "");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim("\xc2\xa0x"), "\xc2\xa0x");  // a no-break space is not ASCII whitespace
}

TEST(Text, CaseHelpersTouchOnlyAsciiLetters) {
    EXPECT_TRUE(iequals("GZip", "gzip"));
    EXPECT_FALSE(iequals("gzip", "gzi"));
    EXPECT_FALSE(iequals("gzip", "gzip "));
    EXPECT_EQ(to_lower("NO_PROXY=Example.COM\xc3\x89"), "no_proxy=example.com\xc3\x89");
}

TEST(Text, JoinTakesAnyStringLikeParts) {
    EXPECT_EQ(join(std::vector<std::string>{"a", "b", "c"}, ", "), "a, b, c");
    EXPECT_EQ(join(std::array<std::string_view, 1>{"only"}, ", "), "only");
    EXPECT_EQ(join(std::vector<std::string>{}, ", "), "");
    EXPECT_EQ(join(std::vector<std::string>{"", "x"}, "|"), "|x");
}

TEST(Text, PrintableEscapesControlBytesAndMarksACut) {
    EXPECT_EQ(printable("short"), "short");
    EXPECT_EQ(printable("abcdef", 3), "abc...");
    EXPECT_EQ(printable("abc", 3), "abc");
    EXPECT_EQ(printable("a\tb\nc\x7f"), "a\\x09b\\x0ac\\x7f");
    EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
}

TEST(Text, PrintableNeverSplitsAUtf8Character) {
    const std::string e_acute = "\xc3\xa9";  // two bytes
    EXPECT_EQ(printable("ab" + e_acute + "cd", 3), "ab...");
    EXPECT_EQ(printable("ab" + e_acute + "cd", 4), "ab" + e_acute + "...");
}

TEST(Text, PrintableAsciiOnlyEscapesEveryByteAbove0x7e) {
    EXPECT_EQ(printable("\xa9x", std::string_view::npos, true), "\\xa9x");
    EXPECT_EQ(printable("\xa9x"), "\xa9x");
}
