#include "api/outcome.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace std::chrono_literals;
using isync::api::classify_response;
using isync::api::outcome_kind;
using isync::api::parse_retry_after;
using isync::test::contains;

namespace {

constexpr std::int64_t now_ms = 784111777000;  // Sun, 06 Nov 1994 08:49:37 GMT
constexpr std::chrono::milliseconds max_delay = 60s;

isync::api::outcome classify(unsigned status, std::string_view body = "", std::string_view retry_after = "") {
    return classify_response(status, body, retry_after, now_ms, max_delay);
}

}  // namespace

TEST(Outcome, Status200IsSuccess) {
    auto o = classify(200, R"({"paging":{"count":0},"data":[]})");
    EXPECT_EQ(o.kind, outcome_kind::success);
    EXPECT_FALSE(o.retry_after);
}

TEST(Outcome, Status401And403AreAuthWithAClearMessage) {
    for (unsigned status : {401u, 403u}) {
        auto o = classify(status, "Bearer abc.def.secret is expired");
        EXPECT_EQ(o.kind, outcome_kind::auth) << status;
        EXPECT_TRUE(contains(o.message, std::to_string(status)));
        EXPECT_TRUE(contains(o.message, "token"));
        // The server might echo the token: an auth message must not repeat the body.
        EXPECT_FALSE(contains(o.message, "abc.def.secret")) << o.message;
        EXPECT_FALSE(o.retry_after);
    }
}

TEST(Outcome, Status422IsBadRequestSayingTheApisOwnMessage) {
    auto o = classify(422, R"({"message":"invalid parameter: take"})");
    EXPECT_EQ(o.kind, outcome_kind::bad_request);
    EXPECT_EQ(o.message, "HTTP 422: the API refused the request: invalid parameter: take");
    EXPECT_FALSE(o.retry_after);
}

TEST(Outcome, ABodyThatIsNotAJsonMessageIsQuoted) {
    EXPECT_EQ(classify(422, R"({"code":7})").message, R"(HTTP 422: the API refused the request: "{"code":7}")");
    EXPECT_EQ(classify(400, "bad take").message, R"(HTTP 400: the API refused the request: "bad take")");
}

TEST(Outcome, Status422BodyIsTruncatedTo200Bytes) {
    const std::string body = std::string(200, 'a') + std::string(300, 'b');
    auto o = classify(422, body);
    EXPECT_EQ(o.kind, outcome_kind::bad_request);
    EXPECT_TRUE(contains(o.message, std::string(200, 'a') + "..."));
    EXPECT_FALSE(contains(o.message, "b")) << o.message;
    EXPECT_LT(o.message.size(), 300u);
}

TEST(Outcome, BodyOfExactly200BytesIsNotMarkedTruncated) {
    auto o = classify(422, std::string(200, 'a'));
    EXPECT_TRUE(contains(o.message, std::string(200, 'a')));
    EXPECT_FALSE(contains(o.message, "...")) << o.message;
}

TEST(Outcome, ControlCharactersInTheBodyAreNeutralised) {
    auto o = classify(422, "line one\r\nINJECTED log line\x1b[31m");
    EXPECT_FALSE(contains(o.message, "\n"));
    EXPECT_FALSE(contains(o.message, "\r"));
    EXPECT_FALSE(contains(o.message, "\x1b"));
    EXPECT_TRUE(contains(o.message, "INJECTED log line"));
}

TEST(Outcome, Status404IsBadRequest) {
    auto o = classify(404, "no such route");
    EXPECT_EQ(o.kind, outcome_kind::bad_request);
    EXPECT_TRUE(contains(o.message, "404"));
    EXPECT_TRUE(contains(o.message, "no such route"));
}

TEST(Outcome, Status429HonoursRetryAfterSeconds) {
    auto o = classify(429, "", "7");
    EXPECT_EQ(o.kind, outcome_kind::rate_limited);
    ASSERT_TRUE(o.retry_after);
    EXPECT_EQ(*o.retry_after, 7s);
    EXPECT_TRUE(contains(o.message, "429"));
}

TEST(Outcome, Status429HonoursRetryAfterHttpDateFromInjectedNow) {
    auto o = classify(429, "", "Sun, 06 Nov 1994 08:50:07 GMT");  // 30 s after now_ms
    EXPECT_EQ(o.kind, outcome_kind::rate_limited);
    ASSERT_TRUE(o.retry_after);
    EXPECT_EQ(*o.retry_after, 30s);

    // The same header read at another "now" gives another delay: the clock is the injected one.
    auto later = classify_response(429, "", "Sun, 06 Nov 1994 08:50:07 GMT", now_ms + 10'000, max_delay);
    ASSERT_TRUE(later.retry_after);
    EXPECT_EQ(*later.retry_after, 20s);
}

TEST(Outcome, Status429WithADateInThePastRetriesAtOnce) {
    auto o = classify(429, "", "Sun, 06 Nov 1994 08:00:00 GMT");
    ASSERT_TRUE(o.retry_after);
    EXPECT_EQ(*o.retry_after, 0ms);
}

TEST(Outcome, Status429WithMalformedRetryAfterStillWaitsABoundedTime) {
    for (const char* value : {"soon", "-5", "1.5", "7s", "Sun, 06 Nov 1994", ""}) {
        auto o = classify(429, "", value);
        EXPECT_EQ(o.kind, outcome_kind::rate_limited) << value;
        ASSERT_TRUE(o.retry_after) << value;
        EXPECT_GE(*o.retry_after, 0ms) << value;
        EXPECT_LE(*o.retry_after, max_delay) << value;
    }
}

TEST(Outcome, Status429WithHugeRetryAfterIsClampedToMaxDelay) {
    for (const char* value :
         {"3600", "9223372036854775", "99999999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"}) {
        auto o = classify(429, "", value);
        ASSERT_TRUE(o.retry_after) << value;
        EXPECT_EQ(*o.retry_after, max_delay) << value;
    }
}

TEST(Outcome, RetryAfterParsesBothForms) {
    EXPECT_EQ(parse_retry_after("120", now_ms), 120s);
    EXPECT_EQ(parse_retry_after(" 0 ", now_ms), 0s);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:38 GMT", now_ms), 1s);
    EXPECT_EQ(parse_retry_after("soon", now_ms), std::nullopt);
    EXPECT_EQ(parse_retry_after("12abc", now_ms), std::nullopt);
    EXPECT_EQ(parse_retry_after("", now_ms), std::nullopt);
}

TEST(Outcome, ServerErrorsAreTransient) {
    for (unsigned status : {500u, 502u, 503u, 504u}) {
        auto o = classify(status, "<html>bad gateway</html>");
        EXPECT_EQ(o.kind, outcome_kind::transient) << status;
        EXPECT_TRUE(contains(o.message, std::to_string(status)));
        EXPECT_FALSE(o.retry_after);
    }
}

TEST(Outcome, RedirectIsNotFollowedAndNotRetried) {
    auto o = classify(301, "", "");
    EXPECT_EQ(o.kind, outcome_kind::bad_request);
    EXPECT_TRUE(contains(o.message, "301"));
    EXPECT_TRUE(contains(o.message, "api.base_url"));
    EXPECT_FALSE(o.retry_after);
}
