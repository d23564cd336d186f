#include "config/addresses.hpp"

#include "util/text.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <optional>

namespace isync::config {
namespace {

constexpr std::string_view base_url_allowed = "write https://host[:port][/path]";
constexpr std::string_view proxy_allowed_file = "write http://host:port, or \"\" to use $https_proxy";
constexpr std::string_view proxy_allowed_env = "write http://host:port";
constexpr std::string_view listen_allowed =
    "write host:port (e.g. 127.0.0.1:9464; :9464 for all interfaces), or \"\" to disable metrics";

// Digits only, 0-65535 (Boost.URL's port_number() wraps 99999 silently).
std::optional<std::uint16_t> port_of(std::string_view digits) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string quote_value(std::string_view text) {
    std::string escaped;  // a quote or backslash in the value cannot end the quoting early
    for (const char c : text) {
        if (c == '"' || c == '\\') escaped += '\\';
        escaped += c;
    }
    return "\"" + util::printable(escaped, 64) + "\"";
}

error to_error(const value_problem& p, std::string_view prefix) {
    return make_error(errc::config, fmt::format("{}{}; {}", prefix, p.problem, p.allowed));
}

parsed<endpoint> parse_base_url(std::string_view text) {
    auto parsed_url = boost::urls::parse_absolute_uri(text);
    const bool has_credentials = parsed_url && parsed_url->has_userinfo();
    const std::string shown = has_credentials ? std::string("(a URL with user info, not shown)") : quote_value(text);
    auto fail = [&](std::string_view why) {
        return value_problem{fmt::format("{} {}", shown, why), std::string(base_url_allowed)};
    };
    if (!parsed_url || !parsed_url->has_authority() || parsed_url->host().empty()) return fail("is not a base URL");
    const auto& u = *parsed_url;
    if (u.scheme_id() != boost::urls::scheme::https) return fail("does not use https");
    if (u.has_userinfo()) return fail("must not contain user info (the token goes in a token file)");
    if (u.has_query() || u.has_fragment()) return fail("must not have a query or fragment");
    endpoint ep;
    // host_address(): an IPv6 literal without its brackets, as resolvers and
    // certificate checks want it.
    ep.host = u.host_address();
    if (u.has_port()) {
        const auto port = port_of(u.port());
        if (!port || *port == 0) return fail("has an invalid port");
        ep.port = *port;
    }
    ep.path_prefix = std::string(u.encoded_path());
    while (!ep.path_prefix.empty() && ep.path_prefix.back() == '/') ep.path_prefix.pop_back();
    return ep;
}

std::string redact_proxy_url(std::string_view text) {
    // The password is what lies between the first ':' after "://" and the
    // last '@' before the host; no parse needed, so even a malformed URL
    // loses it.
    const auto scheme = text.find("://");
    const auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
    const auto slash = text.find('/', start);
    const auto at = text.substr(0, slash).rfind('@');
    if (at == std::string_view::npos || at < start) return std::string(text);
    const auto colon = text.substr(start, at - start).find(':');
    if (colon == std::string_view::npos) return std::string(text);
    return std::string(text.substr(0, start + colon + 1)) + "***" + std::string(text.substr(at));
}

parsed<proxy_endpoint> parse_proxy_url(std::string_view text, proxy_source source) {
    const bool strict = source == proxy_source::config_file;
    const std::string_view allowed = strict ? proxy_allowed_file : proxy_allowed_env;
    std::string url(util::trim(text));
    if (!strict && url.find("://") == std::string::npos) url = "http://" + url;
    auto parsed_url = boost::urls::parse_absolute_uri(url);
    const bool has_credentials = parsed_url && parsed_url->has_userinfo();
    const std::string shown = has_credentials ? quote_value(redact_proxy_url(text)) : quote_value(text);
    auto fail = [&](std::string_view why) {
        return value_problem{fmt::format("{} {}", shown, why), std::string(allowed)};
    };
    if (!parsed_url || parsed_url->host().empty()) return fail("is not a proxy URL");
    if (parsed_url->scheme_id() != boost::urls::scheme::http) return fail("must use http:// (a CONNECT proxy)");
    if (parsed_url->has_query() || parsed_url->has_fragment() ||
        (!parsed_url->encoded_path().empty() && parsed_url->encoded_path() != "/"))
        return fail("is not a proxy URL");
    proxy_endpoint p;
    if (has_credentials) {
        // Percent-decoded, as curl does: a password with an @ is written %40.
        p.user = parsed_url->user();
        if (p.user.empty()) return fail("has a password but no user (write http://user:password@host:port)");
        if (p.user.find(':') != std::string::npos) return fail("has a user with a colon, which Basic cannot carry");
        if (parsed_url->has_password()) p.password = secret(parsed_url->password());
    }
    p.host = parsed_url->host_address();
    if (parsed_url->has_port() && !parsed_url->port().empty()) {
        const auto port = port_of(parsed_url->port());
        if (!port || *port == 0) return fail("has a port outside 1-65535");
        p.port = *port;
    } else if (strict) {
        return fail("is not a proxy URL (the port is required)");
    }
    return p;
}

parsed<listen_address> parse_listen_address(std::string_view text) {
    auto fail = [&](std::string_view why) {
        return value_problem{fmt::format("{} {}", quote_value(text), why), std::string(listen_allowed)};
    };
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("is not host:port");
    std::string_view host = text.substr(0, colon);
    const auto port = port_of(text.substr(colon + 1));
    if (!port) return fail("is not host:port");
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string_view::npos)
        return fail("is not host:port (write an IPv6 address in brackets)");
    listen_address out;
    out.port = *port;
    if (host.empty()) {
        out.address = "0.0.0.0";
    } else if (host == "localhost") {
        out.address = "127.0.0.1";
    } else {
        boost::system::error_code ec;
        const auto address = boost::asio::ip::make_address(std::string(host), ec);
        if (ec) return fail("does not name an IP address or localhost (host names are not resolved)");
        out.address = address.to_string();
    }
    return out;
}

}  // namespace isync::config
