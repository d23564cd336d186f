// pg_array's two encodings, byte for byte: the text literal any element type
// reads, and the binary text array that `$n::text[]` parameters are sent in
// (PostgreSQL's array_recv layout). That the server reads them back as they
// were is checked against a real server in the store suite
// (StoreBackends.TextWithTabsLineBreaksBackslashesQuotesAndBracesArrivesAsItWas).
#include "pgstore/pg_array.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace {
using isync::pgstore::pg_array;
using namespace std::string_literals;

TEST(PgArray, ALiteralQuotesAndEscapesTextAndWritesNullBare) {
    pg_array a;
    a.add(std::string_view("a\"b\\c"));
    a.add_null();
    a.add(std::int64_t{-7});
    EXPECT_EQ(a.value(), R"({"a\"b\\c",NULL,-7})");
    EXPECT_FALSE(a.binary());
    EXPECT_EQ(pg_array().value(), "{}");
}

TEST(PgArray, ABinaryTextArrayHasArrayRecvsLayoutAndDropsNul) {
    pg_array a(pg_array::format::binary_text);
    a.add(std::string_view("ab"));
    a.add_null();
    a.add(std::string_view("x\0y", 3));  // NUL cannot be in PostgreSQL text: dropped, as in the literal
    a.add(std::string_view(""));
    const std::string expected =
        "\0\0\0\1"s          // one dimension
        "\0\0\0\1"s          // has NULLs
        "\0\0\0\x19"s        // element type 25: text
        "\0\0\0\4"s          // four elements
        "\0\0\0\1"s          // lower bound 1
        "\0\0\0\2ab"s        // "ab"
        "\xff\xff\xff\xff"s  // NULL
        "\0\0\0\2xy"s        // "x\0y" without its NUL
        "\0\0\0\0"s;         // "", not NULL
    EXPECT_EQ(a.value(), expected);
    EXPECT_TRUE(a.binary());
}

TEST(PgArray, AnEmptyBinaryTextArrayHasNoDimensions) {
    const pg_array a(pg_array::format::binary_text);
    EXPECT_EQ(a.value(),
              "\0\0\0\0"s
              "\0\0\0\0"s
              "\0\0\0\x19"s);
}

TEST(PgArray, ABinaryTextArrayRefusesNumbers) {
    pg_array a(pg_array::format::binary_text);
    EXPECT_THROW(a.add(std::int64_t{1}), std::logic_error);
    EXPECT_THROW(a.add(std::optional<double>(1.5)), std::logic_error);
}

}  // namespace
