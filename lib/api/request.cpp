#include "api/request.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <fmt/format.h>

namespace isync::api {

result<endpoint> parse_base_url(std::string_view text) {
    auto parsed = boost::urls::parse_absolute_uri(text);
    // Never quote a URL that carries credentials: the message reaches logs.
    const bool has_credentials = parsed && parsed->has_userinfo();
    auto fail = [&](std::string_view why) {
        return make_error(errc::config, fmt::format("api.base_url: \"{}\" {}; write https://host[:port][/path-prefix]",
                                                    has_credentials ? std::string_view("(hidden)") : text, why));
    };
    if (!parsed) return fail("is not an absolute URL");
    const auto& u = *parsed;
    if (u.scheme_id() != boost::urls::scheme::https) return fail("does not use https");
    if (u.has_userinfo()) return fail("must not contain user info (the token goes in a token file)");
    if (u.has_query() || u.has_fragment()) return fail("must not have a query or fragment");
    if (u.host().empty()) return fail("has no host");
    endpoint ep;
    // host_address(): an IPv6 literal without its brackets, as resolvers and
    // certificate checks want it.
    ep.host = u.host_address();
    if (u.has_port()) {
        if (u.port_number() == 0) return fail("has an invalid port");
        ep.port = u.port_number();
    }
    ep.path_prefix = std::string(u.encoded_path());
    while (!ep.path_prefix.empty() && ep.path_prefix.back() == '/') ep.path_prefix.pop_back();
    return ep;
}

namespace {

// Everything but RFC 3986 unreserved characters is percent-encoded: `+` and
// `=` inside a value would otherwise be read as a space or a separator by
// form-decoding servers.
void append_param(std::string& out, std::string_view name, std::string_view value) {
    out += out.find('?') == std::string::npos ? '?' : '&';
    out += name;
    out += '=';
    out += boost::urls::encode(value, boost::urls::unreserved_chars);
}

}  // namespace

std::string incidents_target(const endpoint& ep, const incidents_query& q) {
    std::string target = ep.path_prefix + "/v1/incidents";
    append_param(target, "appId", q.pair.app_id);
    append_param(target, "tld", q.pair.tld);
    append_param(target, "from", std::to_string(q.from_ms));
    append_param(target, "to", std::to_string(q.to_ms));
    append_param(target, "skip", std::to_string(q.skip));
    append_param(target, "take", std::to_string(q.take));
    return target;
}

}  // namespace isync::api
