#include "api/request.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <boost/asio/ip/address.hpp>

#include <string>

using isync::errc;
using isync::api::endpoint;
using isync::api::incidents_query;
using isync::api::incidents_target;
using isync::api::parse_base_url;
using isync::test::contains;

namespace {

incidents_query query(std::string app_id, std::string tld) {
    incidents_query q;
    q.pair = {std::move(app_id), std::move(tld)};
    q.from_ms = 1674313200000;
    q.to_ms = 1674399600000;
    q.skip = 40;
    q.take = 10;
    return q;
}

}  // namespace

TEST(RequestTarget, IsExactlyTheDocumentedQuery) {
    const endpoint ep{"api-gw.perimeterx.com", 443, ""};
    EXPECT_EQ(incidents_target(ep, query("PXabc123", "example.com")),
              "/v1/incidents?appId=PXabc123&tld=example.com&from=1674313200000&to=1674399600000&skip=40&take=10");
}

TEST(RequestTarget, CarriesEveryNumberVerbatim) {
    incidents_query q = query("PXa", "b.c");
    q.from_ms = 0;
    q.to_ms = 9007199254740993;  // beyond double precision: must not pass through a double
    q.skip = 123456789012;
    q.take = 1;
    EXPECT_EQ(incidents_target({"h", 443, ""}, q),
              "/v1/incidents?appId=PXa&tld=b.c&from=0&to=9007199254740993&skip=123456789012&take=1");
}

TEST(RequestTarget, RespectsThePathPrefix) {
    auto ep = parse_base_url("https://h/gw/");
    ASSERT_TRUE(ep.has_value()) << ep.error().message;
    EXPECT_EQ(incidents_target(*ep, query("PXabc123", "example.com")),
              "/gw/v1/incidents?appId=PXabc123&tld=example.com&from=1674313200000&to=1674399600000&skip=40&take=10");

    auto nested = parse_base_url("https://h:8443/a/b");
    ASSERT_TRUE(nested.has_value()) << nested.error().message;
    EXPECT_TRUE(incidents_target(*nested, query("x", "y")).starts_with("/a/b/v1/incidents?appId=x&tld=y&"));
}

TEST(RequestTarget, PercentEncodesReservedAndNonAsciiBytes) {
    // `&` would split the parameter, `=` confuse the name, `+` decode as a
    // space, a raw space is not allowed at all; UTF-8 goes byte by byte.
    const std::string target = incidents_target({"h", 443, ""}, query("PX a&b=c+d", "caf\xc3\xa9.example"));
    EXPECT_EQ(target,
              "/v1/incidents?appId=PX%20a%26b%3Dc%2Bd&tld=caf%C3%A9.example"
              "&from=1674313200000&to=1674399600000&skip=40&take=10");
}

TEST(RequestTarget, EncodesPercentAndHashAndQuestionMark) {
    const std::string target = incidents_target({"h", 443, ""}, query("100%#?", "t"));
    EXPECT_TRUE(target.starts_with("/v1/incidents?appId=100%25%23")) << target;
    // Nothing after the path may start a fragment.
    EXPECT_EQ(target.find('#'), std::string::npos) << target;
}

TEST(BaseUrl, AcceptsHttpsHost) {
    auto ep = parse_base_url("https://api-gw.perimeterx.com");
    ASSERT_TRUE(ep.has_value()) << ep.error().message;
    EXPECT_EQ(*ep, (endpoint{"api-gw.perimeterx.com", 443, ""}));
}

TEST(BaseUrl, AcceptsTrailingSlash) {
    auto ep = parse_base_url("https://api.humansecurity.com/");
    ASSERT_TRUE(ep.has_value()) << ep.error().message;
    EXPECT_EQ(*ep, (endpoint{"api.humansecurity.com", 443, ""}));
}

TEST(BaseUrl, AcceptsPortAndPrefix) {
    auto ep = parse_base_url("https://host:8443/prefix");
    ASSERT_TRUE(ep.has_value()) << ep.error().message;
    EXPECT_EQ(*ep, (endpoint{"host", 8443, "/prefix"}));
}

TEST(BaseUrl, RefusesWhatIsNotHttpsHostPortPrefix) {
    for (const char* url : {
             "http://api-gw.perimeterx.com",  // not TLS
             "https://host/?appId=PX1",       // query
             "https://host/#frag",            // fragment
             "https://",                      // no host
             "https:///v1",                   // no host
             "api-gw.perimeterx.com",         // not absolute
             "",                              // nothing
             "https://host:0",                // port 0
         }) {
        auto ep = parse_base_url(url);
        ASSERT_FALSE(ep.has_value()) << url;
        EXPECT_EQ(ep.error().code, errc::config) << url;
        EXPECT_TRUE(contains(ep.error().message, "\"" + std::string(url) + "\"")) << url;
        EXPECT_TRUE(contains(ep.error().message, "https://host[:port]")) << url;  // says how to fix it
    }
}

TEST(BaseUrl, RefusesUserInfo) {
    for (const char* url : {"https://user@host", "https://user:secret@host/prefix"}) {
        auto ep = parse_base_url(url);
        ASSERT_FALSE(ep.has_value()) << url;
        EXPECT_EQ(ep.error().code, errc::config) << url;
        EXPECT_TRUE(contains(ep.error().message, "user info")) << url;
    }
}

TEST(BaseUrl, RefusesAPortOutOfRange) {
    auto ep = parse_base_url("https://host:70000");
    ASSERT_FALSE(ep.has_value());
    EXPECT_EQ(ep.error().code, errc::config);
}

TEST(BaseUrl, Ipv6LiteralHostIsUsableByTheResolver) {
    // endpoint.host goes to the resolver, to SNI (skipped for IP literals) and
    // to certificate host-name checks: all of them want `::1`, not `[::1]`.
    auto ep = parse_base_url("https://[::1]:8443/p");
    ASSERT_TRUE(ep.has_value()) << ep.error().message;
    EXPECT_EQ(ep->port, 8443);
    EXPECT_EQ(ep->path_prefix, "/p");
    boost::system::error_code ec;
    boost::asio::ip::make_address(ep->host, ec);
    EXPECT_FALSE(ec) << "host \"" << ep->host << "\" is not an IP address the resolver accepts";
}
