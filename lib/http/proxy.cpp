#include "http/proxy.hpp"

#include <boost/url/parse.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace isync::http {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

const char* first_set(const std::function<const char*(const char*)>& getenv, const char* a, const char* b) {
    for (const char* name : {a, b}) {
        const char* v = getenv(name);
        if (v && *v) return v;
    }
    return nullptr;
}

}  // namespace

result<proxy_endpoint> parse_proxy_url(std::string_view text) {
    std::string url(trim(text));
    if (url.find("://") == std::string::npos) url = "http://" + url;
    auto fail = [&](std::string_view why) {
        return make_error(errc::config, fmt::format("proxy \"{}\" {}; write http://host:port", text, why));
    };
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) return fail("is not a URL");
    if (parsed->scheme_id() != boost::urls::scheme::http) return fail("must use http:// (a CONNECT proxy)");
    if (parsed->has_userinfo()) return fail("has credentials, which are not supported");
    if (parsed->host().empty()) return fail("has no host");
    proxy_endpoint p;
    p.host = parsed->host_address();
    // port_number() silently wraps 99999; read the digits ourselves.
    if (parsed->has_port() && !parsed->port().empty()) {
        const std::string digits(parsed->port());
        if (digits.size() > 5 || std::stoul(digits) == 0 || std::stoul(digits) > 65535)
            return fail("has a port outside 1-65535");
        p.port = static_cast<std::uint16_t>(std::stoul(digits));
    }
    return p;
}

bool no_proxy_matches(std::string_view list, std::string_view host_in) {
    const std::string host = lower(host_in);
    while (!list.empty()) {
        const auto comma = list.find(',');
        std::string entry = lower(trim(list.substr(0, comma)));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (entry.empty()) continue;
        if (entry == "*") return true;
        // Strip a port, but not from a bracketed IPv6 literal's colons.
        if (auto colon = entry.rfind(':'); colon != std::string::npos && entry.find(']') == std::string::npos &&
                                           entry.find(':') == colon)
            entry.resize(colon);
        if (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
        if (host == entry) return true;
        if (host.size() > entry.size() && host.ends_with(entry) && host[host.size() - entry.size() - 1] == '.')
            return true;
    }
    return false;
}

result<std::optional<proxy_endpoint>> choose_proxy(std::string_view configured, std::string_view target_host,
                                                   const std::function<const char*(const char*)>& getenv) {
    std::string_view chosen = trim(configured);
    if (chosen.empty()) {
        const char* env = first_set(getenv, "https_proxy", "HTTPS_PROXY");
        if (!env) return std::optional<proxy_endpoint>{};
        chosen = env;
    }
    if (const char* no_proxy = first_set(getenv, "no_proxy", "NO_PROXY"); no_proxy && no_proxy_matches(no_proxy, target_host))
        return std::optional<proxy_endpoint>{};
    auto p = parse_proxy_url(chosen);
    if (!p) return p.error();
    return std::optional<proxy_endpoint>{*p};
}

}  // namespace isync::http
