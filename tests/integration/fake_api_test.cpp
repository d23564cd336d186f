// The fake Code Defender API over real TLS on 127.0.0.1: page shape and
// paging, keep-alive, auth and validation errors, per-appId refusals, every
// fault, the link (latency, max in flight, gzip/deflate), the TLS variants,
// live mode, and the incident-sim process. The client here is a
// deliberately plain Beast client, independent of the daemon's.

#include "fake_api/server.hpp"
#include "support/test_support.hpp"
#include "util/timestamp.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <zlib.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <variant>
#include <vector>

namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr std::int64_t start_ms = 1674259200000;  // 2023-01-21T00:00:00Z
constexpr std::int64_t day_ms = 86'400'000;
const std::string pair_query = "appId=PXsim000&tld=site000.example";
const std::string window_query = "&from=" + std::to_string(start_ms) + "&to=" + std::to_string(start_ms + day_ms);

fake_api::server_options small_server(fake_api::faults faults = {}) {
    return {.data = {.seed = 5, .incidents = 120, .start_ms = start_ms, .end_ms = start_ms + day_ms}, .faults = faults};
}

// A blocking HTTPS client that cannot hang a test: each step runs the client's
// own io_context with a Beast deadline.
class client {
public:
    struct options {
        std::string host = "localhost";  // SNI and the name verified
        bool verify = true;
        int max_version = 0;  // 0: OpenSSL's highest
        int min_version = TLS1_2_VERSION;
        std::chrono::milliseconds timeout = 10s;
    };

    client(const fake_api::server& s, options o) : client(s.port(), s.ca_pem(), std::move(o)) {}
    explicit client(const fake_api::server& s) : client(s, options{}) {}

    client(std::uint16_t port, const std::string& ca_pem, options o)
        : options_(std::move(o)), tls_(make_tls(options_, ca_pem)) {
        stream_.set_verify_callback(ssl::host_name_verification(options_.host));
        // RFC 6066: SNI carries host names only, never an address literal.
        boost::system::error_code not_an_address;
        net::ip::make_address(options_.host, not_an_address);
        if (not_an_address) SSL_set_tlsext_host_name(stream_.native_handle(), options_.host.c_str());
        beast::get_lowest_layer(stream_).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    }

    beast::error_code handshake() {
        auto ec = run([&](auto done) { stream_.async_handshake(ssl::stream_base::client, done); });
        handshaken_ = !ec;
        return ec;
    }

    using headers = std::vector<std::pair<http::field, std::string>>;

    beast::error_code send(const std::string& target, std::optional<std::string> token = "test-token",
                           const headers& extra = {}) {
        if (!handshaken_) {
            if (auto ec = handshake()) return ec;
        }
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, options_.host);
        if (token) req.set(http::field::authorization, "Bearer " + *token);
        for (const auto& [name, value] : extra) req.set(name, value);
        return run([&](auto done) { http::async_write(stream_, req, done); });
    }

    // The response, or the error that ended the read.
    std::variant<http::response<http::string_body>, beast::error_code> receive() {
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 << 20);
        auto ec = run([&](auto done) { http::async_read(stream_, buffer_, parser, done); });
        if (ec) return ec;
        return parser.release();
    }

    http::response<http::string_body> get(const std::string& target, std::optional<std::string> token = "test-token",
                                          const headers& extra = {}) {
        if (auto ec = send(target, token, extra)) throw std::runtime_error("send: " + ec.message());
        auto r = receive();
        if (auto* ec = std::get_if<beast::error_code>(&r)) throw std::runtime_error("receive: " + ec->message());
        return std::get<0>(std::move(r));
    }

    void set_timeout(std::chrono::milliseconds t) { options_.timeout = t; }

    int negotiated_version() { return SSL_version(stream_.native_handle()); }

private:
    // Complete before the stream exists: an SSL object copies its context's
    // settings when it is created, so later changes would not reach it.
    static ssl::context make_tls(const options& o, const std::string& ca_pem) {
        ssl::context tls(ssl::context::tls_client);
        tls.add_certificate_authority(net::buffer(ca_pem));
        tls.set_verify_mode(o.verify ? ssl::verify_peer : ssl::verify_none);
        SSL_CTX_set_min_proto_version(tls.native_handle(), o.min_version);
        if (o.max_version) SSL_CTX_set_max_proto_version(tls.native_handle(), o.max_version);
        if (o.min_version < TLS1_2_VERSION) {  // TLS 1.0/1.1 need SHA-1 signatures: security level 0
            SSL_CTX_set_security_level(tls.native_handle(), 0);
            SSL_CTX_set_cipher_list(tls.native_handle(), "DEFAULT:@SECLEVEL=0");
        }
        return tls;
    }

    template <class Start>
    beast::error_code run(Start start) {
        beast::error_code result;
        beast::get_lowest_layer(stream_).expires_after(options_.timeout);
        start([&](beast::error_code ec, auto&&...) { result = ec; });
        ioc_.restart();
        ioc_.run();
        return result;
    }

    options options_;
    net::io_context ioc_;
    ssl::context tls_;
    ssl::stream<beast::tcp_stream> stream_{ioc_, tls_};
    beast::flat_buffer buffer_;
    bool handshaken_ = false;
};

rapidjson::Document parse(const std::string& body) {
    rapidjson::Document doc;
    doc.Parse(body.c_str(), body.size());
    return doc;
}

std::string compact(const rapidjson::Value& v) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w(out);
    v.Accept(w);
    return {out.GetString(), out.GetSize()};
}

std::string incidents(const std::string& query) { return "/v1/incidents?" + query; }

using isync::test::inflated;

// `n` clients, each with its TLS handshake done, so that only their requests race.
std::vector<std::unique_ptr<client>> connected_clients(const fake_api::server& s, int n) {
    std::vector<std::unique_ptr<client>> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<client>(s));
        if (auto ec = clients.back()->handshake()) throw std::runtime_error("handshake: " + ec.message());
    }
    return clients;
}

std::vector<unsigned> statuses(client& c, int n, const std::string& target) {
    std::vector<unsigned> out;
    for (int k = 0; k < n; ++k) out.push_back(c.get(target).result_int());
    return out;
}

TEST(FakeApi, ServesAPageShapedLikeTheContract) {
    fake_api::server s(small_server());
    client c(s);
    const auto res = c.get(incidents(pair_query + window_query + "&take=50"));
    ASSERT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res[http::field::content_type], "application/json");
    const auto doc = parse(res.body());
    ASSERT_FALSE(doc.HasParseError());
    ASSERT_TRUE(doc.IsObject());
    EXPECT_EQ(doc["paging"]["count"].GetInt(), 120);
    EXPECT_STREQ(doc["paging"]["previous"].GetString(), "");
    EXPECT_NE(std::string(doc["paging"]["current"].GetString()).find("skip=0"), std::string::npos);
    EXPECT_NE(std::string(doc["paging"]["next"].GetString()).find("skip=50"), std::string::npos);
    const auto& data = doc["data"];
    ASSERT_EQ(data.Size(), 50u);

    std::int64_t previous_last_seen = std::numeric_limits<std::int64_t>::max();
    for (const auto& item : data.GetArray()) {
        std::optional<std::size_t> index;
        s.with_dataset([&](const fake_api::dataset& d) { index = d.find(item["id"].GetString()); });
        ASSERT_TRUE(index);
        const auto expected = s.expected_incident(*index);
        EXPECT_EQ(compact(item), expected.raw_json);
        const auto last_seen = *isync::util::parse_iso8601_ms(item["last_seen"].GetString());
        EXPECT_LE(last_seen, previous_last_seen) << "newest first";
        previous_last_seen = last_seen;
    }

    const auto last = parse(c.get(incidents(pair_query + window_query + "&take=50&skip=100")).body());
    EXPECT_EQ(last["data"].Size(), 20u);
    EXPECT_STREQ(last["paging"]["next"].GetString(), "");
    EXPECT_NE(std::string(last["paging"]["previous"].GetString()).find("skip=50"), std::string::npos);
}

TEST(FakeApi, WalksAllPagesOverOneConnection) {
    fake_api::server s(small_server());
    client c(s);
    std::vector<std::string> ids;
    int pages = 0;
    for (std::size_t skip = 0;; skip += 7) {
        const auto doc =
            parse(c.get(incidents(pair_query + window_query + "&take=7&skip=" + std::to_string(skip))).body());
        ++pages;
        for (const auto& item : doc["data"].GetArray()) ids.emplace_back(item["id"].GetString());
        if (std::string(doc["paging"]["next"].GetString()).empty()) break;
    }
    std::vector<std::string> expected;
    s.with_dataset([&](const fake_api::dataset& d) {
        for (auto i : d.window(0, start_ms, start_ms + day_ms)) expected.push_back(d.id(i));
    });
    EXPECT_EQ(ids, expected);
    const auto st = s.stats();
    EXPECT_EQ(st.connections_accepted, 1u);
    EXPECT_EQ(st.requests, static_cast<std::uint64_t>(pages));
    EXPECT_EQ(st.status_counts.at(200), static_cast<std::uint64_t>(pages));
    EXPECT_EQ(st.incidents_served, 120u);
    EXPECT_EQ(st.targets.back(), incidents(pair_query + window_query + "&take=7&skip=119"));
}

TEST(FakeApi, DefaultsTheWindowToTheLastDayOfTheSimClock) {
    fake_api::server s(small_server());
    s.set_now_ms(start_ms + day_ms);
    client c(s);
    EXPECT_EQ(parse(c.get(incidents(pair_query)).body())["paging"]["count"].GetInt(), 120);
    s.set_now_ms(start_ms + day_ms / 2);
    std::size_t expected = 0;
    s.with_dataset([&](const fake_api::dataset& d) {
        expected = d.window(0, start_ms - day_ms / 2, start_ms + day_ms / 2).size();
    });
    const auto doc = parse(c.get(incidents(pair_query)).body());
    EXPECT_EQ(doc["paging"]["count"].GetUint64(), expected);
    EXPECT_EQ(doc["data"].Size(), std::min<std::size_t>(expected, 20)) << "take defaults to 20";
}

TEST(FakeApi, ClampsTakeToTheCap) {
    auto options = small_server();
    options.take_cap = 10;
    fake_api::server s(options);
    client c(s);
    const auto doc = parse(c.get(incidents(pair_query + window_query + "&take=50")).body());
    EXPECT_EQ(doc["data"].Size(), 10u);
    EXPECT_NE(std::string(doc["paging"]["next"].GetString()).find("take=10&skip=10"), std::string::npos);
}

TEST(FakeApi, RefusesAMissingOrWrongToken) {
    fake_api::server s(small_server());
    client c(s);
    for (std::optional<std::string> token : {std::optional<std::string>(), std::optional<std::string>("wrong")}) {
        const auto res = c.get(incidents(pair_query), token);
        EXPECT_EQ(res.result_int(), 401u);
        EXPECT_EQ(res.body(), R"({"message":"Unauthorized"})");
    }
    EXPECT_EQ(s.stats().status_counts.at(401), 2u);
    EXPECT_EQ(s.stats().connections_accepted, 1u) << "errors keep the connection alive";
}

TEST(FakeApi, RefusesBadParametersWith422) {
    fake_api::server s(small_server());
    client c(s);
    for (const std::string query :
         {"tld=site000.example", "appId=PXsim000", "appId=PXsim000&tld=x&take=abc", "appId=PXsim000&tld=x&skip=-1",
          "appId=PXsim000&tld=x&from=1.5", "appId=PXsim000&tld=x&to="}) {
        const auto res = c.get(incidents(query));
        EXPECT_EQ(res.result_int(), 422u) << query;
        EXPECT_TRUE(parse(res.body())["message"].IsString()) << query;
    }
    EXPECT_EQ(c.get("/v1/other").result_int(), 404u);
    EXPECT_EQ(c.get("/v2/incidents?" + pair_query).result_int(), 404u);
}

TEST(FakeApi, FiltersByEveryRequestedPair) {
    fake_api::server s({.data = {.seed = 9,
                                 .incidents = 300,
                                 .pairs = fake_api::sim_pairs(3),
                                 .start_ms = start_ms,
                                 .end_ms = start_ms + day_ms}});
    client c(s);
    std::size_t per_pair[3] = {};
    s.with_dataset([&](const fake_api::dataset& d) {
        for (std::size_t p = 0; p < 3; ++p) per_pair[p] = d.window(p, start_ms, start_ms + day_ms).size();
    });
    const auto both = parse(c.get(incidents("appId=PXsim000&appId=PXsim002&tld=site000.example&tld=site002.example" +
                                            window_query + "&take=1000"))
                                .body());
    EXPECT_EQ(both["paging"]["count"].GetUint64(), per_pair[0] + per_pair[2]);
    EXPECT_EQ(both["data"].Size(), per_pair[0] + per_pair[2]);
    const auto none = parse(c.get(incidents("appId=PXsim000&tld=site001.example" + window_query)).body());
    EXPECT_EQ(none["paging"]["count"].GetInt(), 0);
}

TEST(FakeApi, FailsEveryKthRequest) {
    fake_api::server s(small_server({.fail_every_kth = 3}));
    client c(s);
    EXPECT_EQ(statuses(c, 6, incidents(pair_query)), (std::vector<unsigned>{200, 200, 500, 200, 200, 500}));
    EXPECT_EQ(s.stats().status_counts.at(500), 2u);
}

TEST(FakeApi, FailsABurstThenRecovers) {
    fake_api::server s(small_server());
    client c(s);
    s.set_faults({.fail_burst = 2});
    EXPECT_EQ(statuses(c, 3, incidents(pair_query)), (std::vector<unsigned>{500, 500, 200}));
}

TEST(FakeApi, RateLimitsWithRetryAfterInBothForms) {
    fake_api::server s(small_server({.rate_limit_every_kth = 2, .retry_after_seconds = 7}));
    client c(s);
    EXPECT_EQ(c.get(incidents(pair_query)).result_int(), 200u);
    const auto limited = c.get(incidents(pair_query));
    EXPECT_EQ(limited.result_int(), 429u);
    EXPECT_EQ(limited[http::field::retry_after], "7");

    s.set_faults({.rate_limit_every_kth = 1, .retry_after_seconds = 30, .retry_after_http_date = true});
    const auto dated = c.get(incidents(pair_query));
    EXPECT_EQ(dated.result_int(), 429u);
    const auto at = isync::util::parse_http_date_ms(std::string(dated[http::field::retry_after]));
    ASSERT_TRUE(at) << dated[http::field::retry_after];
    const auto date = isync::util::parse_http_date_ms(std::string(dated[http::field::date]));
    ASSERT_TRUE(date);
    EXPECT_GE(*at - *date, 29'000);
    EXPECT_LE(*at - *date, 31'000);
    EXPECT_EQ(s.stats().status_counts.at(429), 2u);
}

TEST(FakeApi, TruncatesTheBody) {
    fake_api::server s(small_server({.truncate_every_kth = 2}));
    client c(s);
    EXPECT_EQ(c.get(incidents(pair_query)).result_int(), 200u);
    ASSERT_FALSE(c.send(incidents(pair_query)));
    const auto r = c.receive();
    ASSERT_TRUE(std::holds_alternative<beast::error_code>(r)) << "a truncated body must not parse as a response";
    const auto ec = std::get<beast::error_code>(r);
    EXPECT_TRUE(ec == http::error::partial_message || ec == net::ssl::error::stream_truncated || ec == net::error::eof)
        << ec.message();
    EXPECT_EQ(s.stats().truncated, 1u);
}

TEST(FakeApi, SendsMalformedJson) {
    fake_api::server s(small_server({.malformed_every_kth = 1}));
    client c(s);
    const auto res = c.get(incidents(pair_query));
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res[http::field::content_type], "application/json");
    EXPECT_TRUE(parse(res.body()).HasParseError());
    EXPECT_EQ(s.stats().malformed, 1u);
}

TEST(FakeApi, SendsAnHtmlPageAsIfFromAProxy) {
    fake_api::server s(small_server({.wrong_content_type_every_kth = 1}));
    client c(s);
    const auto res = c.get(incidents(pair_query));
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res[http::field::content_type].substr(0, 9), "text/html");
    EXPECT_EQ(s.stats().wrong_content_type, 1u);
}

TEST(FakeApi, ResetsTheConnection) {
    fake_api::server s(small_server({.reset_every_kth = 1}));
    client c(s);
    ASSERT_FALSE(c.send(incidents(pair_query)));
    const auto r = c.receive();
    ASSERT_TRUE(std::holds_alternative<beast::error_code>(r));
    EXPECT_EQ(s.stats().resets, 1u);
    EXPECT_TRUE(s.stats().status_counts.empty());
}

TEST(FakeApi, DelaysEveryAnswer) {
    fake_api::server s(small_server({.delay = 150ms}));
    client c(s);
    c.get(incidents(pair_query));  // the handshake is not part of the measurement
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(c.get(incidents(pair_query)).result_int(), 200u);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 150ms);
}

TEST(FakeApi, NeverAnswersAndStillStopsCleanly) {
    fake_api::server s(small_server({.never_answer = true}));
    client c(s);
    ASSERT_FALSE(c.send(incidents(pair_query)));
    ASSERT_TRUE(s.wait_for_requests(1));
    EXPECT_EQ(s.stats().unanswered, 1u);
    c.set_timeout(300ms);
    const auto r = c.receive();
    ASSERT_TRUE(std::holds_alternative<beast::error_code>(r));
    EXPECT_EQ(std::get<beast::error_code>(r), beast::error::timeout);
    const auto started = std::chrono::steady_clock::now();
    s.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s) << "stop() closes the hanging session itself";
}

TEST(FakeApi, StopsWithAnIdleKeepAliveConnectionOpen) {
    auto s = std::make_unique<fake_api::server>(small_server());
    client c(*s);
    EXPECT_EQ(c.get(incidents(pair_query)).result_int(), 200u);
    const auto started = std::chrono::steady_clock::now();
    s.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
    if (!c.send(incidents(pair_query))) {  // the write may still succeed into the socket buffer
        EXPECT_TRUE(std::holds_alternative<beast::error_code>(c.receive()));
    }
}

TEST(FakeApi, RecordsTheServerName) {
    fake_api::server s(small_server());
    client by_name(s);
    EXPECT_EQ(by_name.get(incidents(pair_query)).result_int(), 200u);
    client by_address(s, {.host = "127.0.0.1"});  // IP SAN verified; no SNI is sent for an address
    EXPECT_EQ(by_address.get(incidents(pair_query)).result_int(), 200u);
    const auto names = s.stats().server_names;
    ASSERT_EQ(names.size(), 2u);
    EXPECT_EQ(names[0], "localhost");
    EXPECT_EQ(names[1], "");
}

TEST(FakeApi, RefusesOneAppIdWithItsStatusWhileServingAnother) {
    auto options = small_server();
    options.data.pairs = fake_api::sim_pairs(2);
    options.refused_app_ids = {{"PXsim001", fake_api::app_refusal::invalid},
                               {"PXlocked", fake_api::app_refusal::forbidden}};
    options.unauthorized_app_ids = {"PXscoped"};  // the older field still means 401
    fake_api::server s(options);
    client c(s);

    const auto invalid = c.get(incidents("appId=PXsim001&tld=site001.example" + window_query));
    EXPECT_EQ(invalid.result_int(), 422u);
    EXPECT_EQ(invalid[http::field::content_type], "application/json");
    EXPECT_EQ(invalid.body(), R"({"message":"Invalid appId PXsim001"})");

    const auto served = c.get(incidents(pair_query + window_query + "&take=1000"));
    ASSERT_EQ(served.result_int(), 200u);
    const auto doc = parse(served.body());
    ASSERT_FALSE(doc.HasParseError());
    EXPECT_GT(doc["data"].Size(), 0u);
    for (const auto& item : doc["data"].GetArray()) EXPECT_STREQ(item["app_id"].GetString(), "PXsim000");

    const auto forbidden = c.get(incidents("appId=PXlocked&tld=site000.example"));
    EXPECT_EQ(forbidden.result_int(), 403u);
    EXPECT_EQ(forbidden.body(), R"({"message":"Forbidden"})");
    const auto unauthorized = c.get(incidents("appId=PXscoped&tld=site000.example"));
    EXPECT_EQ(unauthorized.result_int(), 401u);
    EXPECT_EQ(unauthorized.body(), R"({"message":"Unauthorized"})");

    const auto st = s.stats();
    EXPECT_EQ(st.status_counts, (std::map<unsigned, std::uint64_t>{{200, 1}, {401, 1}, {403, 1}, {422, 1}}));
    EXPECT_EQ(st.connections_accepted, 1u) << "a refusal keeps the connection alive";
}

TEST(FakeApi, GzipBodyDecodesToTheBodySentUncompressed) {
    fake_api::server s(small_server());
    client c(s);
    const auto target = incidents(pair_query + window_query + "&take=100");
    const auto plain = c.get(target);
    ASSERT_EQ(plain.result_int(), 200u);
    EXPECT_EQ(plain.count(http::field::content_encoding), 0u) << "not asked: not compressed";
    EXPECT_EQ(plain.count(http::field::vary), 0u);
    EXPECT_FALSE(parse(plain.body()).HasParseError());

    s.reset_stats();
    const auto gz = c.get(target, "test-token", {{http::field::accept_encoding, "gzip, deflate, br"}});
    ASSERT_EQ(gz.result_int(), 200u);
    EXPECT_EQ(gz[http::field::content_encoding], "gzip");
    EXPECT_EQ(gz[http::field::content_type], "application/json");
    EXPECT_EQ(gz[http::field::vary], "Accept-Encoding");
    EXPECT_EQ(gz[http::field::content_length], std::to_string(gz.body().size()));
    const auto decoded = inflated(gz.body(), 15 + 16);
    ASSERT_TRUE(decoded) << "not one complete gzip stream";
    EXPECT_EQ(*decoded, plain.body());
    EXPECT_LT(gz.body().size(), plain.body().size() / 3);

    const auto st = s.stats();
    EXPECT_EQ(st.bytes_sent, gz.body().size());
    EXPECT_EQ(st.body_bytes_uncompressed, plain.body().size());
}

TEST(FakeApi, DeflatesWhenGzipIsRefused) {
    fake_api::server s(small_server());
    client c(s);
    const auto target = incidents(pair_query + window_query + "&take=100");
    const auto plain = c.get(target);
    const auto z = c.get(target, "test-token", {{http::field::accept_encoding, "gzip;q=0, deflate"}});
    ASSERT_EQ(z.result_int(), 200u);
    EXPECT_EQ(z[http::field::content_encoding], "deflate");
    EXPECT_EQ(inflated(z.body(), 15), plain.body()) << "deflate is the zlib format";
}

TEST(FakeApi, SendsBodiesUncompressedWhenCompressionIsOff) {
    auto options = small_server();
    options.link.compression = false;
    fake_api::server s(options);
    client c(s);
    const auto res =
        c.get(incidents(pair_query + window_query), "test-token", {{http::field::accept_encoding, "gzip"}});
    ASSERT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.count(http::field::content_encoding), 0u);
    EXPECT_FALSE(parse(res.body()).HasParseError());
    const auto st = s.stats();
    EXPECT_EQ(st.bytes_sent, res.body().size());
    EXPECT_EQ(st.body_bytes_uncompressed, res.body().size());
}

TEST(FakeApi, DelaysManyRequestsAtOnceWithoutHoldingUpTheLoop) {
    auto options = small_server();
    options.link = {.latency = 1000ms, .latency_jitter = 100ms};
    fake_api::server s(options);
    auto clients = connected_clients(s, 3);
    const auto target = incidents(pair_query + window_query);
    const auto started = std::chrono::steady_clock::now();
    for (auto& c : clients) ASSERT_FALSE(c->send(target));
    // All three wait out their latency together, before any answer goes out
    // (bytes_sent counts each answer just before its write). A loop blocked
    // by one request's latency would answer it before reading the next.
    EXPECT_TRUE(s.wait_for([](const auto& st) { return st.in_flight == 3 && st.bytes_sent == 0; }, 10s));
    for (auto& c : clients) {
        auto r = c->receive();
        ASSERT_TRUE(std::holds_alternative<http::response<http::string_body>>(r));
        EXPECT_EQ(std::get<0>(r).result_int(), 200u);
    }
    EXPECT_GE(std::chrono::steady_clock::now() - started, 1000ms);
    EXPECT_TRUE(s.wait_for([](const auto& st) { return st.in_flight == 0; }, 10s));
    EXPECT_EQ(s.stats().peak_in_flight, 3u);
}

TEST(FakeApi, RefusesRequestsBeyondMaxInFlightWith429AtOnce) {
    constexpr auto latency = 1000ms;
    auto options = small_server();
    options.link = {.latency = latency, .max_in_flight = 2, .retry_after_seconds = 3};
    fake_api::server s(options);
    auto clients = connected_clients(s, 4);
    const auto target = incidents(pair_query + window_query);

    // Two fill the limit while they wait out their latency; the other two
    // arrive meanwhile. (Sent in that order rather than all four at once, so
    // which two are refused is known.)
    const auto started = std::chrono::steady_clock::now();
    ASSERT_FALSE(clients[0]->send(target));
    ASSERT_FALSE(clients[1]->send(target));
    ASSERT_TRUE(s.wait_for([](const auto& st) { return st.in_flight == 2; }, 10s));
    for (int i = 2; i < 4; ++i) {
        const auto refused = clients[i]->get(target);
        EXPECT_EQ(refused.result_int(), 429u);
        EXPECT_EQ(refused[http::field::retry_after], "3");
        EXPECT_EQ(refused.body(), R"({"message":"Too Many Requests"})");
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, latency) << "refused at once, not after the latency";
    for (int i = 0; i < 2; ++i) {
        auto r = clients[i]->receive();
        ASSERT_TRUE(std::holds_alternative<http::response<http::string_body>>(r));
        EXPECT_EQ(std::get<0>(r).result_int(), 200u);
    }
    EXPECT_GE(std::chrono::steady_clock::now() - started, latency);

    ASSERT_TRUE(s.wait_for([](const auto& st) { return st.in_flight == 0; }, 10s)) << "every slot is given back";
    const auto st = s.stats();
    EXPECT_LE(st.peak_in_flight, 2u);
    EXPECT_EQ(st.peak_in_flight, 2u);
    EXPECT_EQ(st.refused_429, 2u);
    EXPECT_EQ(st.requests, 4u);
    EXPECT_EQ(st.status_counts, (std::map<unsigned, std::uint64_t>{{200, 2}, {429, 2}}));
}

class FakeApiCertificate : public testing::TestWithParam<fake_api::server_certificate> {};

TEST_P(FakeApiCertificate, IsRefusedByAVerifyingClient) {
    fake_api::server s({.tls = {.certificate = GetParam()}});
    client c(s);
    const auto ec = c.handshake();
    EXPECT_TRUE(ec) << "the handshake must fail";
    EXPECT_TRUE(s.wait_for([](const auto& st) { return st.tls_handshake_failures == 1; }, 10s));
    // The same server is reachable when the client does not verify: the failure was the certificate.
    client lax(s, {.verify = false});
    EXPECT_FALSE(lax.handshake());
}

INSTANTIATE_TEST_SUITE_P(Hostile, FakeApiCertificate,
                         testing::Values(fake_api::server_certificate::expired,
                                         fake_api::server_certificate::not_yet_valid,
                                         fake_api::server_certificate::wrong_host,
                                         fake_api::server_certificate::self_signed,
                                         fake_api::server_certificate::unknown_ca));

TEST(FakeApi, CanSpeakOnlyTls11) {
    fake_api::server s(
        {.tls = {.min_version = fake_api::tls_version::tls1_0, .max_version = fake_api::tls_version::tls1_1}});
    client modern(s);
    EXPECT_TRUE(modern.handshake()) << "a TLS 1.2+ client must refuse";
    client old(s, {.max_version = TLS1_1_VERSION, .min_version = TLS1_VERSION});
    const auto ec = old.handshake();
    if (ec) GTEST_SKIP() << "this OpenSSL build cannot speak TLS 1.1 at all: " << ec.message();
    EXPECT_EQ(old.negotiated_version(), TLS1_1_VERSION);
}

TEST(FakeApi, LiveModeChangesAndAddsIncidentsAtTheSimClock) {
    fake_api::server s(small_server());
    const auto now = start_ms + 2 * day_ms;
    s.set_now_ms(now);
    s.set_faults({.live_changes_per_request = 3});
    client c(s);
    const auto at_now = "&from=" + std::to_string(now - 1000) + "&to=" + std::to_string(now + 1);
    const auto first = parse(c.get(incidents(pair_query + at_now + "&take=100")).body());
    const auto second = parse(c.get(incidents(pair_query + at_now + "&take=100")).body());
    const auto st = s.stats();
    EXPECT_EQ(st.live_changed, 6u);
    EXPECT_EQ(st.live_added, 6u);
    EXPECT_EQ(s.incident_count(), 126u);
    EXPECT_GE(first["paging"]["count"].GetInt(), 4);  // 3 new + at least one distinct change
    EXPECT_GT(second["paging"]["count"].GetInt(), first["paging"]["count"].GetInt());
    for (const auto& item : second["data"].GetArray()) {
        std::optional<std::size_t> index;
        s.with_dataset([&](const fake_api::dataset& d) { index = d.find(item["id"].GetString()); });
        ASSERT_TRUE(index);
        const auto expected = s.expected_incident(*index);
        EXPECT_EQ(compact(item), expected.raw_json);
        EXPECT_GT(*isync::util::parse_iso8601_ms(*expected.last_seen), now - 1000);
    }
    // The window the client reads (in the past) lost the changed incidents.
    s.set_faults({});
    const auto past = parse(c.get(incidents(pair_query + window_query)).body());
    EXPECT_LT(past["paging"]["count"].GetInt(), 120);
}

// Not a correctness test: how fast one keep-alive connection drains the fake.
// Run in a Release build with --gtest_also_run_disabled_tests.
TEST(FakeApi, DISABLED_Throughput) {
    fake_api::server s({.data = {.seed = 1, .incidents = 200'000, .start_ms = start_ms, .end_ms = start_ms + day_ms}});
    for (const int take : {1000, 50}) {
        client c(s);
        std::size_t served = 0;
        const auto started = std::chrono::steady_clock::now();
        for (std::size_t skip = 0; skip < 200'000; skip += static_cast<std::size_t>(take)) {
            const auto res = c.get(incidents(pair_query + window_query + "&take=" + std::to_string(take) +
                                             "&skip=" + std::to_string(skip)));
            ASSERT_EQ(res.result_int(), 200u);
            served += static_cast<std::size_t>(take);
        }
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
        std::printf("take=%d: %zu incidents in %.2f s = %.0f incidents/s\n", take, served, elapsed.count(),
                    static_cast<double>(served) / elapsed.count());
    }
}

// incident-sim as a process: started, read from, stopped by SIGTERM.
class sim_process {
public:
    explicit sim_process(std::vector<std::string> args) {
        int out[2];
        if (::pipe(out) != 0) throw std::runtime_error("pipe");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            ::close(out[0]);
            ::close(out[1]);
            std::vector<char*> argv{const_cast<char*>(INCIDENT_SIM_PATH)};
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(INCIDENT_SIM_PATH, argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        stdout_ = ::fdopen(out[0], "r");
    }
    ~sim_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (stdout_) std::fclose(stdout_);
    }

    // The next line it prints; blocks until it is printed (no sleeping).
    std::string next_line() {
        char line[512] = {};
        if (!std::fgets(line, sizeof line, stdout_)) return {};
        return line;
    }

    // SIGTERM, then the exit status.
    int terminate() {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    pid_t pid_ = -1;
    FILE* stdout_ = nullptr;
};

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST(IncidentSim, ServesUntilSigterm) {
    const auto dir = std::filesystem::temp_directory_path() / ("incident-sim-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    fake_api::write_file(dir / "token", "sim-secret\n");
    sim_process sim({"--incidents", "500", "--pairs", "2", "--span", "7d", "--token-file", (dir / "token").string(),
                     "--ca-out", (dir / "ca.pem").string(), "--port-file", (dir / "port").string(), "--fail-every",
                     "3"});
    const auto line = sim.next_line();
    ASSERT_EQ(line.rfind("incident-sim listening on https://127.0.0.1:", 0), 0u) << line;
    EXPECT_NE(line.find("(500 incidents, 2 pairs)"), std::string::npos) << line;
    const auto port = static_cast<std::uint16_t>(std::stoi(read_file(dir / "port")));
    EXPECT_NE(line.find(":" + std::to_string(port) + " "), std::string::npos);

    client c(port, read_file(dir / "ca.pem"), {});
    const auto target = incidents("appId=PXsim001&tld=site001.example&from=0&to=99999999999999&take=1000");
    EXPECT_EQ(c.get(target, "test-token").result_int(), 401u);
    EXPECT_EQ(c.get(target, "sim-secret").result_int(), 200u);
    EXPECT_EQ(c.get(target, "sim-secret").result_int(), 500u) << "--fail-every 3";
    const auto doc = parse(c.get(target, "sim-secret").body());
    EXPECT_GT(doc["paging"]["count"].GetInt(), 150);
    EXPECT_LT(doc["paging"]["count"].GetInt(), 350);

    EXPECT_EQ(sim.terminate(), 0);
    std::filesystem::remove_all(dir);
}

TEST(IncidentSim, PrintsItsStatsAsOneJsonLineAtExit) {
    const auto dir = std::filesystem::temp_directory_path() / ("incident-sim-stats-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    sim_process sim({"--incidents", "200", "--ca-out", (dir / "ca.pem").string(), "--port-file",
                     (dir / "port").string(), "--stats-file", (dir / "stats.json").string(), "--refuse", "PXsim001=403",
                     "--latency", "5ms", "--latency-jitter", "5ms", "--max-in-flight", "4"});
    ASSERT_EQ(sim.next_line().rfind("incident-sim listening on", 0), 0u);
    const auto port = static_cast<std::uint16_t>(std::stoi(read_file(dir / "port")));

    client c(port, read_file(dir / "ca.pem"), {});
    const auto target = incidents("appId=PXsim000&tld=site000.example&from=0&to=99999999999999&take=1000");
    const auto gz = c.get(target, "test-token", {{http::field::accept_encoding, "gzip"}});
    ASSERT_EQ(gz.result_int(), 200u);
    EXPECT_EQ(gz[http::field::content_encoding], "gzip");
    const auto plain = c.get(target);
    ASSERT_EQ(plain.result_int(), 200u);
    EXPECT_EQ(inflated(gz.body(), 15 + 16), plain.body());
    const auto refused = c.get(incidents("appId=PXsim001&tld=site001.example"));
    EXPECT_EQ(refused.result_int(), 403u);
    EXPECT_EQ(refused.body(), R"({"message":"Forbidden"})");

    EXPECT_EQ(sim.terminate(), 0);
    const auto line = sim.next_line();
    ASSERT_FALSE(line.empty()) << "no stats line after SIGTERM";
    EXPECT_EQ(line.back(), '\n');
    const auto doc = parse(line);
    ASSERT_FALSE(doc.HasParseError()) << line;
    EXPECT_EQ(doc["requests"].GetUint64(), 3u);
    EXPECT_EQ(doc["status_counts"]["200"].GetUint64(), 2u);
    EXPECT_EQ(doc["status_counts"]["403"].GetUint64(), 1u);
    EXPECT_EQ(doc["bytes_sent"].GetUint64(), gz.body().size() + plain.body().size() + refused.body().size());
    EXPECT_EQ(doc["body_bytes_uncompressed"].GetUint64(), 2 * plain.body().size() + refused.body().size());
    EXPECT_EQ(doc["peak_in_flight"].GetUint64(), 1u);
    EXPECT_EQ(doc["refused_429"].GetUint64(), 0u);
    EXPECT_EQ(read_file(dir / "stats.json"), line) << "--stats-file holds the same line";
    EXPECT_EQ(sim.next_line(), "") << "one line, then end of output";
    std::filesystem::remove_all(dir);
}

TEST(IncidentSim, RejectsABadRefusalStatus) {
    sim_process sim({"--refuse", "PXsim000=500"});
    EXPECT_EQ(sim.next_line(), "");
    EXPECT_EQ(sim.terminate(), 2);
}

TEST(IncidentSim, RejectsUnknownFlags) {
    sim_process sim({"--no-such-flag", "1"});
    EXPECT_EQ(sim.next_line(), "");
    EXPECT_EQ(sim.terminate(), 2);
}

}  // namespace

// ------------------------------------------------------------ GET /v1/account-settings

TEST(FakeApi, AccountSettingsListTheDatasetsPairsADisabledAppAndFollowChanges) {
    auto options = small_server();
    options.data.pairs = {{"PXa", "one.example"}, {"PXa", "two.example"}, {"PXb", "three.example"}};
    fake_api::server s(options);
    client c(s);
    auto r = c.get("/v1/account-settings");
    ASSERT_EQ(r.result_int(), 200u);
    auto apps = isync::api::parse_account_settings(r.body());
    ASSERT_TRUE(apps) << apps.error().message;
    EXPECT_EQ(*apps, (std::vector<fake_api::application>{{"PXa", "Simulated PXa", true, {"one.example", "two.example"}},
                                                         {"PXb", "Simulated PXb", true, {"three.example"}},
                                                         {"PXsimoff", "Switched off", false, {"disabled.example"}}}));
    EXPECT_EQ(c.get("/v1/account-settings", "wrong").result_int(), 401u);

    s.set_applications({{"PXc", "C", true, {"four.example"}}});
    apps = isync::api::parse_account_settings(c.get("/v1/account-settings").body());
    ASSERT_TRUE(apps) << apps.error().message;
    EXPECT_EQ(*apps, (std::vector<fake_api::application>{{"PXc", "C", true, {"four.example"}}}));

    s.set_faults({.account_settings_status = 503});
    EXPECT_EQ(c.get("/v1/account-settings").result_int(), 503u);
    EXPECT_EQ(c.get("/v1/incidents?appId=PXa&tld=one.example" + window_query).result_int(), 200u)
        << "only discovery is refused";
    EXPECT_EQ(s.stats().account_settings_requests, 4u);
}

TEST(FakeApi, AnAccountFileIsServedAsItIsAndReadAtEveryRequest) {
    isync::test::temp_dir dir;
    const std::string file = dir.file("account.json");
    std::ofstream(file) << R"({"applications":[{"app_id":"PXfile","hostDomains":[{"domain":"f.example"}]}]})";
    auto options = small_server();
    options.account_file = file;
    fake_api::server s(options);
    client c(s);
    EXPECT_EQ(c.get("/v1/account-settings").body(),
              R"({"applications":[{"app_id":"PXfile","hostDomains":[{"domain":"f.example"}]}]})");
    std::ofstream(file, std::ios::trunc) << R"({"applications":[]})";
    EXPECT_EQ(c.get("/v1/account-settings").body(), R"({"applications":[]})");
    std::filesystem::remove(file);
    EXPECT_EQ(c.get("/v1/account-settings").result_int(), 500u);
}
