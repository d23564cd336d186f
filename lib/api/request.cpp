#include "api/request.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <fmt/format.h>

namespace isync::api {

result<endpoint> parse_base_url(std::string_view text) {
    auto ep = config::parse_base_url(text);
    if (!ep) return config::to_error(ep.error(), "api.base_url: ");
    return *ep;
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
