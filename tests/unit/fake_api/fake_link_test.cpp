// The fake API's simulated link, without sockets: the latency drawn for an
// answer, the coding chosen from Accept-Encoding, the encoded bodies (decoded
// here by zlib on its own), and the in-flight gate.

#include "fake_api/link.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <limits>
#include <optional>
#include <set>
#include <string>

namespace {

using namespace std::chrono_literals;
using fake_api::choose_coding;
using fake_api::content_coding;
using fake_api::link_delay;

using isync::test::inflated;

std::string sample_json() {
    std::string body = R"({"paging":{"count":500},"data":[)";
    for (int i = 0; i < 500; ++i) {
        if (i) body += ',';
        body +=
            R"({"id":")" + std::to_string(i * 7919) + R"(","risk_level":"high","script":"https://cdn.example/a.js"})";
    }
    return body + "]}";
}

TEST(FakeLink, DelayIsTheLatencyPlusAJitterWithinItsBound) {
    const fake_api::link_options fixed{.latency = 100ms};
    EXPECT_EQ(link_delay(fixed, 0), 100ms);
    EXPECT_EQ(link_delay(fixed, 123456789), 100ms) << "no jitter: the random draw is ignored";

    const fake_api::link_options jittery{.latency = 100ms, .latency_jitter = 20ms};
    EXPECT_EQ(link_delay(jittery, 0), 100ms);
    EXPECT_EQ(link_delay(jittery, 20), 120ms) << "the jitter's bound is reachable";
    EXPECT_EQ(link_delay(jittery, 21), 100ms);
    std::set<std::chrono::milliseconds::rep> seen;
    for (std::uint64_t r = 0; r < 2000; ++r) {
        const auto d = link_delay(jittery, r * 0x9e3779b97f4a7c15ull);
        ASSERT_GE(d, 100ms);
        ASSERT_LE(d, 120ms);
        seen.insert(d.count());
    }
    EXPECT_EQ(seen.size(), 21u) << "every value in [latency, latency + jitter] occurs";
    EXPECT_LE(link_delay(jittery, std::numeric_limits<std::uint64_t>::max()), 120ms);
    EXPECT_EQ(link_delay({.latency_jitter = 5ms}, 3), 3ms) << "jitter alone";
}

TEST(FakeLink, ChoosesGzipThenDeflateFromAcceptEncoding) {
    struct row {
        const char* header;
        content_coding expected;
    };
    for (const row r : {
             row{"", content_coding::identity},
             row{"identity", content_coding::identity},
             row{"br", content_coding::identity},
             row{"gzip", content_coding::gzip},
             row{"GZip", content_coding::gzip},
             row{"x-gzip", content_coding::gzip},
             row{"deflate", content_coding::deflate},
             row{"gzip, deflate, br", content_coding::gzip},
             row{"deflate, gzip", content_coding::gzip},
             row{"br;q=1.0, gzip;q=0.8, *;q=0.1", content_coding::gzip},
             row{"gzip ; q=0.5", content_coding::gzip},
             row{"gzip;q=0, deflate", content_coding::deflate},
             row{"gzip;Q=0.000, deflate;q=1", content_coding::deflate},
             row{"gzip;q=0.001", content_coding::gzip},
             row{"gzip;q=0, deflate;q=0", content_coding::identity},
             row{"*", content_coding::gzip},
             row{"*;q=0", content_coding::identity},
             row{"gzip;q=0, *", content_coding::deflate},
             row{"gzip;q=0, deflate;q=0, *", content_coding::identity},
             row{"gzipped, deflater", content_coding::identity},
             row{" , ,;q=, gzip", content_coding::gzip},
         }) {
        EXPECT_EQ(choose_coding(r.header), r.expected) << '"' << r.header << '"';
    }
}

TEST(FakeLink, NamesTheCodings) {
    EXPECT_EQ(fake_api::coding_name(content_coding::gzip), "gzip");
    EXPECT_EQ(fake_api::coding_name(content_coding::deflate), "deflate");
    EXPECT_EQ(fake_api::coding_name(content_coding::identity), "");
}

TEST(FakeLink, GzipBodyInflatesToTheOriginal) {
    const auto body = sample_json();
    const auto gz = fake_api::encode_body(body, content_coding::gzip);
    ASSERT_GE(gz.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // RFC 1952 magic
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    EXPECT_LT(gz.size(), body.size() / 4) << "repetitive JSON compresses well";
    EXPECT_EQ(inflated(gz, 15 + 16), body);
    EXPECT_FALSE(inflated(gz, 15)) << "gzip, not the zlib format";
}

TEST(FakeLink, DeflateBodyIsTheZlibFormat) {
    const auto body = sample_json();
    const auto z = fake_api::encode_body(body, content_coding::deflate);
    ASSERT_GE(z.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(z[0]) & 0x0f, 8) << "RFC 1950 header: method 8 (deflate)";
    EXPECT_EQ((static_cast<unsigned char>(z[0]) * 256 + static_cast<unsigned char>(z[1])) % 31, 0);
    EXPECT_EQ(inflated(z, 15), body);
    EXPECT_FALSE(inflated(z, 15 + 16)) << "zlib format, not gzip";
}

TEST(FakeLink, EncodesEmptyBodiesAndLeavesIdentityAlone) {
    EXPECT_EQ(inflated(fake_api::encode_body("", content_coding::gzip), 15 + 16), "");
    EXPECT_EQ(inflated(fake_api::encode_body("", content_coding::deflate), 15), "");
    const auto body = sample_json();
    EXPECT_EQ(fake_api::encode_body(body, content_coding::identity), body);
}

TEST(FakeLink, GateAdmitsUpToItsLimit) {
    fake_api::in_flight_gate gate(2);
    EXPECT_TRUE(gate.try_enter());
    EXPECT_TRUE(gate.try_enter());
    EXPECT_EQ(gate.current(), 2u);
    EXPECT_FALSE(gate.try_enter());
    EXPECT_EQ(gate.current(), 2u) << "a refusal changes nothing";
    gate.leave();
    EXPECT_EQ(gate.current(), 1u);
    EXPECT_TRUE(gate.try_enter());
    EXPECT_FALSE(gate.try_enter());
    gate.leave();
    gate.leave();
    gate.leave();  // one too many: stays at zero
    EXPECT_EQ(gate.current(), 0u);
}

TEST(FakeLink, GateWithoutALimitAdmitsEverything) {
    fake_api::in_flight_gate gate;
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(gate.try_enter());
    EXPECT_EQ(gate.current(), 1000u);
}

}  // namespace

// The fake's rate limit: N per fixed window from the first request, the rest
// refused until the reset, and each answer says what is left and when.
TEST(FakeLink, RateWindowAllowsNPerWindowThenRefusesUntilTheReset) {
    using clock = std::chrono::steady_clock;
    fake_api::rate_window_counter rate(3, std::chrono::milliseconds(1000));
    const clock::time_point t0{};
    const auto first = rate.take(t0);
    EXPECT_TRUE(first.allowed);
    EXPECT_EQ(first.remaining, 2u);
    EXPECT_EQ(first.until_reset, std::chrono::milliseconds(1000));
    EXPECT_TRUE(rate.take(t0 + std::chrono::milliseconds(10)).allowed);
    const auto third = rate.take(t0 + std::chrono::milliseconds(20));
    EXPECT_TRUE(third.allowed);
    EXPECT_EQ(third.remaining, 0u);
    const auto fourth = rate.take(t0 + std::chrono::milliseconds(400));
    EXPECT_FALSE(fourth.allowed);
    EXPECT_EQ(fourth.until_reset, std::chrono::milliseconds(600));
    // The next window starts on the grid (t0 + 1 s), not at the next request.
    const auto next = rate.take(t0 + std::chrono::milliseconds(2500));
    EXPECT_TRUE(next.allowed);
    EXPECT_EQ(next.remaining, 2u);
    EXPECT_EQ(next.until_reset, std::chrono::milliseconds(500));
    fake_api::rate_window_counter none(0, std::chrono::milliseconds(1000));
    EXPECT_FALSE(none.enabled());
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(none.take(t0).allowed);
}
