// Choosing a CONNECT proxy: parsing its URL, no_proxy matching, and the
// precedence of api.proxy over the environment, with getenv injected.

#include "http/proxy.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

using isync::errc;
using isync::http::choose_proxy;
using isync::http::no_proxy_matches;
using isync::http::parse_proxy_url;
using isync::http::proxy_endpoint;
using isync::test::contains;

namespace {

// A getenv over a fixed map; unset names give nullptr.
struct fake_env {
    std::map<std::string, std::string> vars;
    std::function<const char*(const char*)> getenv() const {
        return [this](const char* name) -> const char* {
            auto it = vars.find(name);
            return it == vars.end() ? nullptr : it->second.c_str();
        };
    }
};

::testing::AssertionResult config_error(const isync::result<proxy_endpoint>& r, std::string_view needle) {
    if (r) return ::testing::AssertionFailure() << "parsed as " << r->host << ":" << r->port;
    if (r.error().code != errc::config)
        return ::testing::AssertionFailure()
               << "code " << static_cast<int>(r.error().code) << ": " << r.error().message;
    return contains(r.error().message, needle);
}

}  // namespace

// ---------------------------------------------------------------- parse_proxy_url

TEST(ParseProxyUrl, HttpHostAndPort) {
    const auto p = parse_proxy_url("http://proxy.corp.example:8080");
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(*p, (proxy_endpoint{"proxy.corp.example", 8080}));
}

TEST(ParseProxyUrl, SchemeMayBeOmitted) {
    const auto p = parse_proxy_url("proxy.corp.example:8080");
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(*p, (proxy_endpoint{"proxy.corp.example", 8080}));

    const auto ip = parse_proxy_url("10.1.2.3:3129");
    ASSERT_TRUE(ip) << ip.error().message;
    EXPECT_EQ(*ip, (proxy_endpoint{"10.1.2.3", 3129}));
}

TEST(ParseProxyUrl, DefaultPortIs3128) {
    for (const char* url : {"http://proxy.corp.example", "http://proxy.corp.example/", "proxy.corp.example"}) {
        SCOPED_TRACE(url);
        const auto p = parse_proxy_url(url);
        ASSERT_TRUE(p) << p.error().message;
        EXPECT_EQ(*p, (proxy_endpoint{"proxy.corp.example", 3128}));
    }
}

TEST(ParseProxyUrl, SurroundingSpacesAreIgnored) {
    const auto p = parse_proxy_url("  http://proxy.corp.example:8080 \n");
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(*p, (proxy_endpoint{"proxy.corp.example", 8080}));
}

TEST(ParseProxyUrl, RefusesHttpsAndOtherSchemes) {
    EXPECT_TRUE(config_error(parse_proxy_url("https://proxy.corp.example:8443"), "http://"));
    EXPECT_TRUE(config_error(parse_proxy_url("socks5://proxy.corp.example:1080"), "http://"));
}

TEST(ParseProxyUrl, TakesBasicCredentialsPercentDecoded) {
    const auto r = parse_proxy_url("http://alice:p%40ss%3Aword@proxy.corp.example:8080");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->host, "proxy.corp.example");
    EXPECT_EQ(r->port, 8080);
    EXPECT_EQ(r->user, "alice");
    EXPECT_EQ(r->password.reveal(), "p@ss:word");
    // A user alone: the password may come from api.proxy_password_file.
    const auto user_only = parse_proxy_url("http://alice@proxy.corp.example:8080");
    ASSERT_TRUE(user_only) << user_only.error().message;
    EXPECT_EQ(user_only->user, "alice");
    EXPECT_TRUE(user_only->password.empty());
    // No user, or one Basic cannot carry: refused, the password never quoted.
    const auto no_user = parse_proxy_url("http://:s3cret@proxy.corp.example:8080");
    EXPECT_TRUE(config_error(no_user, "no user"));
    if (!no_user) {
        EXPECT_FALSE(contains(no_user.error().message, "s3cret")) << no_user.error().message;
    }
    EXPECT_TRUE(config_error(parse_proxy_url("http://al%3Aice:pw@proxy.corp.example:8080"), "colon"));
}

TEST(RedactProxyUrl, HidesOnlyThePassword) {
    using isync::config::redact_proxy_url;
    EXPECT_EQ(redact_proxy_url("http://alice:s3cret@proxy:3128"), "http://alice:***@proxy:3128");
    EXPECT_EQ(redact_proxy_url("http://alice:s3@cret@proxy:3128/"), "http://alice:***@proxy:3128/");
    EXPECT_EQ(redact_proxy_url("alice:s3cret@proxy:3128"), "alice:***@proxy:3128");
    EXPECT_EQ(redact_proxy_url("http://alice@proxy:3128"), "http://alice@proxy:3128");
    EXPECT_EQ(redact_proxy_url("http://proxy:3128"), "http://proxy:3128");
}

TEST(ParseProxyUrl, RefusesAMissingHost) {
    EXPECT_FALSE(parse_proxy_url("http://:8080"));
    EXPECT_FALSE(parse_proxy_url(""));
}

TEST(ParseProxyUrl, RefusesAPortThatIsNotAPort) {
    // A port that does not fit in 16 bits, or an empty one, must not become port 0 or a truncated number.
    EXPECT_TRUE(config_error(parse_proxy_url("http://proxy.corp.example:99999"), "proxy.corp.example"));
    EXPECT_TRUE(config_error(parse_proxy_url("http://proxy.corp.example:65536"), "proxy.corp.example"));
    EXPECT_TRUE(config_error(parse_proxy_url("http://proxy.corp.example:0"), "proxy.corp.example"));
    // RFC 3986 3.2.3: an empty port means the default; either that or a refusal, never port 0.
    const auto empty = parse_proxy_url("http://proxy.corp.example:");
    if (empty) {
        EXPECT_EQ(empty->port, 3128);
    }
}

// ---------------------------------------------------------------- no_proxy_matches

TEST(NoProxyMatches, StarMatchesEverything) {
    EXPECT_TRUE(no_proxy_matches("*", "api-gw.perimeterx.com"));
    EXPECT_TRUE(no_proxy_matches("localhost, *", "api-gw.perimeterx.com"));
}

TEST(NoProxyMatches, ExactHost) {
    EXPECT_TRUE(no_proxy_matches("api-gw.perimeterx.com", "api-gw.perimeterx.com"));
    EXPECT_FALSE(no_proxy_matches("api-gw.perimeterx.com", "perimeterx.com"));
    EXPECT_FALSE(no_proxy_matches("api-gw.perimeterx.com", "x.api-gw.perimeterx.com.evil"));
}

TEST(NoProxyMatches, DomainWithAndWithoutLeadingDotMatchesSubdomains) {
    for (const char* entry : {".example.com", "example.com"}) {
        SCOPED_TRACE(entry);
        EXPECT_TRUE(no_proxy_matches(entry, "api.example.com"));
        EXPECT_TRUE(no_proxy_matches(entry, "a.b.example.com"));
        EXPECT_TRUE(no_proxy_matches(entry, "example.com"));
        EXPECT_FALSE(no_proxy_matches(entry, "badexample.com"));
        EXPECT_FALSE(no_proxy_matches(entry, "example.com.evil.net"));
        EXPECT_FALSE(no_proxy_matches(entry, "example.org"));
    }
}

TEST(NoProxyMatches, PortsAreIgnored) {
    EXPECT_TRUE(no_proxy_matches("example.com:443", "api.example.com"));
    EXPECT_TRUE(no_proxy_matches(".example.com:8443", "example.com"));
    EXPECT_FALSE(no_proxy_matches("badexample.com:443", "example.com"));
}

TEST(NoProxyMatches, CaseInsensitive) {
    EXPECT_TRUE(no_proxy_matches("EXAMPLE.com", "Api.Example.COM"));
    EXPECT_TRUE(no_proxy_matches(".Example.Com", "API.EXAMPLE.COM"));
}

TEST(NoProxyMatches, SpacesAndEmptyEntries) {
    EXPECT_TRUE(no_proxy_matches("  localhost ,  example.com  ", "api.example.com"));
    EXPECT_TRUE(no_proxy_matches("localhost,,\texample.com", "example.com"));
    EXPECT_FALSE(no_proxy_matches(" , ,", "example.com"));
    EXPECT_FALSE(no_proxy_matches("", "example.com"));
}

TEST(NoProxyMatches, OtherEntriesDoNotMatch) {
    EXPECT_FALSE(no_proxy_matches("localhost,127.0.0.1,.internal", "api-gw.perimeterx.com"));
    EXPECT_TRUE(no_proxy_matches("localhost,127.0.0.1,.internal", "127.0.0.1"));
}

// ---------------------------------------------------------------- choose_proxy

TEST(ChooseProxy, DirectWhenNothingIsSet) {
    const fake_env env;
    const auto r = choose_proxy(std::nullopt, "api-gw.perimeterx.com", env.getenv());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(*r);
}

TEST(ChooseProxy, ConfiguredProxyBeatsTheEnvironment) {
    const fake_env env{{{"https_proxy", "http://env-lower:1111"}, {"HTTPS_PROXY", "http://env-upper:2222"}}};
    const auto r = choose_proxy(proxy_endpoint{"configured", 3333}, "api-gw.perimeterx.com", env.getenv());
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(*r);
    EXPECT_EQ(**r, (proxy_endpoint{"configured", 3333}));
}

TEST(ChooseProxy, LowercaseHttpsProxyBeatsUppercase) {
    const fake_env both{{{"https_proxy", "http://env-lower:1111"}, {"HTTPS_PROXY", "http://env-upper:2222"}}};
    const auto r = choose_proxy(std::nullopt, "api-gw.perimeterx.com", both.getenv());
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(*r);
    EXPECT_EQ(**r, (proxy_endpoint{"env-lower", 1111}));

    const fake_env upper_only{{{"HTTPS_PROXY", "http://env-upper:2222"}}};
    const auto u = choose_proxy(std::nullopt, "api-gw.perimeterx.com", upper_only.getenv());
    ASSERT_TRUE(u) << u.error().message;
    ASSERT_TRUE(*u);
    EXPECT_EQ(**u, (proxy_endpoint{"env-upper", 2222}));

    // An empty https_proxy counts as unset.
    const fake_env empty_lower{{{"https_proxy", ""}, {"HTTPS_PROXY", "http://env-upper:2222"}}};
    const auto e = choose_proxy(std::nullopt, "api-gw.perimeterx.com", empty_lower.getenv());
    ASSERT_TRUE(e) << e.error().message;
    ASSERT_TRUE(*e);
    EXPECT_EQ(**e, (proxy_endpoint{"env-upper", 2222}));
}

TEST(ChooseProxy, HttpProxyAloneIsNotUsedForHttps) {
    const fake_env env{{{"http_proxy", "http://plain:80"}, {"HTTP_PROXY", "http://plain:80"}}};
    const auto r = choose_proxy(std::nullopt, "api-gw.perimeterx.com", env.getenv());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(*r);
}

TEST(ChooseProxy, NoProxyExemptsTheTarget) {
    for (const char* var : {"no_proxy", "NO_PROXY"}) {
        SCOPED_TRACE(var);
        const fake_env env{{{"https_proxy", "http://env-lower:1111"}, {var, "localhost,.perimeterx.com"}}};
        const auto exempt = choose_proxy(std::nullopt, "api-gw.perimeterx.com", env.getenv());
        ASSERT_TRUE(exempt) << exempt.error().message;
        EXPECT_FALSE(*exempt);

        const auto other = choose_proxy(std::nullopt, "api.humansecurity.com", env.getenv());
        ASSERT_TRUE(other) << other.error().message;
        ASSERT_TRUE(*other);
        EXPECT_EQ(**other, (proxy_endpoint{"env-lower", 1111}));
    }
}

TEST(ChooseProxy, LowercaseNoProxyBeatsUppercase) {
    const fake_env env{{{"https_proxy", "http://p:1"}, {"no_proxy", "other.example"}, {"NO_PROXY", "*"}}};
    const auto r = choose_proxy(std::nullopt, "api-gw.perimeterx.com", env.getenv());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(*r) << "no_proxy is set, so NO_PROXY is not read";
}

TEST(ChooseProxy, BadProxyUrlIsAConfigError) {
    const fake_env env{{{"https_proxy", "https://secure-proxy:443"}}};
    const auto r = choose_proxy(std::nullopt, "api-gw.perimeterx.com", env.getenv());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::config);
    EXPECT_TRUE(contains(r.error().message, "https://secure-proxy:443"));

    // A refused api.proxy with credentials (here: no port, which the file
    // form requires) is quoted back without its password.
    const auto c =
        isync::config::parse_proxy_url("http://bob:pw-canary@configured", isync::config::proxy_source::config_file);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().problem.find("pw-canary"), std::string::npos) << c.error().problem;
    EXPECT_NE(c.error().problem.find("bob:***@configured"), std::string::npos) << c.error().problem;
}
