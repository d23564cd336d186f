#include "api/request.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <fmt/format.h>

namespace isync::api {

result<endpoint> parse_base_url(std::string_view text) {
    auto fail = [&](std::string_view why) {
        return make_error(errc::config, fmt::format("api.base_url: \"{}\" {}; write https://host[:port][/path-prefix]",
                                                    text, why));
    };
    auto parsed = boost::urls::parse_absolute_uri(text);
    if (!parsed) return fail("is not an absolute URL");
    const auto& u = *parsed;
    if (u.scheme_id() != boost::urls::scheme::https) return fail("does not use https");
    if (u.has_userinfo()) return fail("must not contain user info (the token goes in a token file)");
    if (u.has_query() || u.has_fragment()) return fail("must not have a query or fragment");
    if (u.host().empty()) return fail("has no host");
    endpoint ep;
    ep.host = u.host();
    if (u.has_port()) {
        if (u.port_number() == 0) return fail("has an invalid port");
        ep.port = u.port_number();
    }
    ep.path_prefix = std::string(u.encoded_path());
    while (!ep.path_prefix.empty() && ep.path_prefix.back() == '/') ep.path_prefix.pop_back();
    return ep;
}

std::string incidents_target(const endpoint& ep, const incidents_query& q) {
    boost::urls::url u;
    u.set_encoded_path(ep.path_prefix + "/v1/incidents");
    auto params = u.params();
    params.append({"appId", q.pair.app_id});
    params.append({"tld", q.pair.tld});
    params.append({"from", std::to_string(q.from_ms)});
    params.append({"to", std::to_string(q.to_ms)});
    params.append({"skip", std::to_string(q.skip)});
    params.append({"take", std::to_string(q.take)});
    return std::string(u.encoded_resource());
}

}  // namespace isync::api
