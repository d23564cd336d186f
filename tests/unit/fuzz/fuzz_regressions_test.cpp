// Inputs on which a fuzz target (fuzz/, scripts/fuzz.sh) found a crash, a
// sanitizer report or a broken invariant. Each reproducer is kept byte for
// byte in fuzz/regressions/<target>/<name>, which every fuzz run replays; the
// case here names that file and checks the contract, so any correct fix
// passes, not only the one in mind when the case was written.

#include "api/outcome.hpp"
#include "config_file/loader.hpp"
#include "util/timestamp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using namespace std::string_view_literals;
using isync::util::format_http_date;
using isync::util::normalize_iso8601;
using isync::util::parse_http_date_ms;
using isync::util::parse_iso8601_ms;

namespace {

constexpr std::int64_t tests_now_ms = 784111777000;  // Sun, 06 Nov 1994 08:49:37 GMT
constexpr std::string_view one_pair = "sync:\n  pairs:\n    - { app_id: PXabc123, tld: example.com }\n";

// loader.hpp: a refusal is one `<file>:<line>:<col>: ...` line per problem;
// what the file wrote is quoted and escaped, so no control byte gets through.
void expect_one_clean_line_per_problem(std::string_view yaml, std::string_view must_mention) {
    const auto loaded = isync::config::load_config_text(yaml, "/etc/x.yaml");
    ASSERT_FALSE(loaded.has_value());
    EXPECT_EQ(loaded.error().code, isync::errc::config);
    const std::string& message = loaded.error().message;
    EXPECT_NE(message.find(must_mention), std::string::npos) << message;
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = message.find('\n', start);
        const std::string line = message.substr(start, end == std::string::npos ? std::string::npos : end - start);
        EXPECT_EQ(line.rfind("/etc/x.yaml:", 0), 0u) << "a line without the file's position:\n" << message;
        EXPECT_TRUE(std::none_of(line.begin(), line.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
            << "a raw control byte in: " << line;
        if (end == std::string::npos) break;
        start = end + 1;
    }
}

}  // namespace

// fuzz/regressions/fuzz_timestamp/http_date_before_1970: format_http_date
// divides toward zero, so an instant before the epoch printed as
// "Thu, 01 Jan 1970 00:00:-1 GMT", which parse_http_date_ms refuses.
TEST(FuzzRegressions, HttpDateBefore1970FormatsAndRoundTrips) {
    const auto ms = parse_http_date_ms("Wed, 31 Dec 1969 23:59:59 GMT");
    ASSERT_EQ(ms, -1000);
    EXPECT_EQ(format_http_date(*ms), "Wed, 31 Dec 1969 23:59:59 GMT");
    EXPECT_EQ(parse_http_date_ms(format_http_date(*ms)), ms);
    EXPECT_EQ(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");  // whole seconds, rounded down
    EXPECT_EQ(format_http_date(-62167219200000), "Sat, 01 Jan 0000 00:00:00 GMT");
}

// fuzz/regressions/fuzz_timestamp/iso_offset_before_year_0000 and
// iso_offset_after_year_9999: the text is in years 0000-9999 but its UTC
// instant is not, and format_iso8601_ms writes "-001-12-31T23:00:00.000Z" and
// "10000-01-01T01:00:00.000Z", which parse_iso8601_ms refuses; the page parser
// would store that as the normalised timestamp. Refusing such input, or
// normalising it to text that parses back, are both sensible.
TEST(FuzzRegressions, IsoTimestampWhoseOffsetLeavesYears0000To9999) {
    for (const char* text : {"0000-01-01T01:00:00+02:00", "9999-12-31T23:00:00-02:00"}) {
        const auto ms = parse_iso8601_ms(text);
        const auto normal = normalize_iso8601(text);
        ASSERT_EQ(ms.has_value(), normal.has_value()) << text;
        if (!ms) continue;
        EXPECT_EQ(parse_iso8601_ms(*normal), ms) << text << " normalised to " << *normal;
    }
}

// fuzz/regressions/fuzz_retry_after/huge_delta_then_junk: delta-seconds too
// large for int64 return the maximum before the bytes after the digits are
// looked at, so "<20 digits><junk>" is accepted while "12abc" is refused.
TEST(FuzzRegressions, RetryAfterWithJunkAfterAHugeNumberIsMalformed) {
    EXPECT_EQ(isync::api::parse_retry_after("9999999999999999999\xff"
                                            "999999"sv,
                                            tests_now_ms),
              std::nullopt);
    EXPECT_EQ(isync::api::parse_retry_after("99999999999999999999abc", tests_now_ms), std::nullopt);
    // A huge value that is all digits is still well-formed: wait as long as allowed.
    EXPECT_EQ(isync::api::parse_retry_after("99999999999999999999", tests_now_ms), std::chrono::milliseconds::max());
}

// fuzz/regressions/fuzz_config/yaml_error_quotes_raw_newline and
// yaml_error_quotes_raw_control_byte: yaml-cpp's message quotes the offending
// byte raw ("unknown escape character: <byte>") and the loader passes it on,
// so a newline splits the report and other control bytes reach the terminal.
TEST(FuzzRegressions, YamlSyntaxErrorThatQuotesARawByteStaysOneCleanLine) {
    expect_one_clean_line_per_problem("\xff\x00\n"sv, "YAML syntax error");
    expect_one_clean_line_per_problem("a: \"\\\x01\"\n"sv, "YAML syntax error");
}

// fuzz/regressions/fuzz_config/unknown_key_with_newline: a quoted key may hold
// any character; the dotted key path in the message is built from it raw.
TEST(FuzzRegressions, UnknownKeyWithANewlineStaysOnOneLine) {
    expect_one_clean_line_per_problem("\"a\\nb\": 1\n" + std::string(one_pair), "unknown key");
    expect_one_clean_line_per_problem("api:\n  \"time\\nout\": 30s\n" + std::string(one_pair), "unknown key");
}

// fuzz/regressions/fuzz_config/duplicate_pair_with_newline: the message for a
// repeated pair shows its app_id and tld as written, unquoted.
TEST(FuzzRegressions, RepeatedPairWithANewlineStaysOnOneLine) {
    expect_one_clean_line_per_problem(
        "sync:\n  pairs:\n    - { app_id: A, tld: \"a\\nb.com\" }\n    - { app_id: A, tld: \"a\\nb.com\" }\n",
        "repeats sync.pairs[0]");
}

// fuzz/regressions/fuzz_config/base_url_scheme_in_mixed_case: "Https://..."
// was accepted (a scheme's case means nothing) and kept as written, so the
// configuration's base_url did not start with "https://" as everything that
// shows or compares it expects. It is accepted, and shown as https.
TEST(FuzzRegressions, BaseUrlWithAMixedCaseSchemeIsShownAsHttps) {
    const auto loaded = isync::config::load_config_text(
        std::string("api:\n  base_url: HttPS://api-gw.perimeterx.com/\n") + std::string(one_pair), "/etc/x.yaml");
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->api.base_url, "https://api-gw.perimeterx.com");
    EXPECT_EQ(loaded->api.base.host, "api-gw.perimeterx.com");
}

// fuzz/regressions/fuzz_config/ca_file_path_with_newline: "<path> does not
// exist" shows the resolved path as written, unquoted.
TEST(FuzzRegressions, MissingCaFileWithANewlineStaysOnOneLine) {
    expect_one_clean_line_per_problem("api:\n  ca_file: \"ca\\n.pem\"\n" + std::string(one_pair), "does not exist");
}
