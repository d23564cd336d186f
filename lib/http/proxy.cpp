#include "http/proxy.hpp"

#include "util/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace isync::http {
namespace {

const char* first_set(const std::function<const char*(const char*)>& getenv, const char* a, const char* b) {
    for (const char* name : {a, b}) {
        const char* v = getenv(name);
        if (v && *v) return v;
    }
    return nullptr;
}

}  // namespace

result<proxy_endpoint> parse_proxy_url(std::string_view text) {
    auto p = config::parse_proxy_url(text, config::proxy_source::environment);
    if (!p) return config::to_error(p.error(), "proxy ");
    return *p;
}

bool no_proxy_matches(std::string_view list, std::string_view host_in) {
    const std::string host = util::to_lower(host_in);
    while (!list.empty()) {
        const auto comma = list.find(',');
        std::string entry = util::to_lower(util::trim(list.substr(0, comma)));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (entry.empty()) continue;
        if (entry == "*") return true;
        // Strip a port, but not from a bracketed IPv6 literal's colons.
        if (auto colon = entry.rfind(':');
            colon != std::string::npos && entry.find(']') == std::string::npos && entry.find(':') == colon)
            entry.resize(colon);
        if (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
        if (host == entry) return true;
        if (host.size() > entry.size() && host.ends_with(entry) && host[host.size() - entry.size() - 1] == '.')
            return true;
    }
    return false;
}

result<std::optional<proxy_endpoint>> choose_proxy(const std::optional<proxy_endpoint>& configured,
                                                   std::string_view target_host,
                                                   const std::function<const char*(const char*)>& getenv) {
    const char* env = configured ? nullptr : first_set(getenv, "https_proxy", "HTTPS_PROXY");
    if (!configured && !env) return std::optional<proxy_endpoint>{};
    // no_proxy exempts the host from a configured proxy too, as before.
    if (const char* no_proxy = first_set(getenv, "no_proxy", "NO_PROXY");
        no_proxy && no_proxy_matches(no_proxy, target_host))
        return std::optional<proxy_endpoint>{};
    if (configured) return configured;
    auto p = parse_proxy_url(env);
    if (!p) return p.error();
    return std::optional<proxy_endpoint>{*p};
}

}  // namespace isync::http
