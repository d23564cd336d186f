#pragma once
// Choosing an HTTP CONNECT proxy: `api.proxy`, else `https_proxy` /
// `HTTPS_PROXY`, unless `no_proxy` / `NO_PROXY` exempts the host. Sans-io.

#include "util/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace isync::http {

struct proxy_endpoint {
    std::string host;
    std::uint16_t port = 3128;

    bool operator==(const proxy_endpoint&) const = default;
};

// Parses `http://host[:port][/]` (the scheme may be omitted). Fails with
// errc::config for other schemes or user info (proxy credentials are not
// supported yet).
result<proxy_endpoint> parse_proxy_url(std::string_view url);

// True when a `no_proxy` list (comma separated; `*`, `host`, `.domain`,
// `domain`, optional `:port` ignored) exempts `host`.
bool no_proxy_matches(std::string_view no_proxy, std::string_view host);

// The proxy to use for `target_host`, or nullopt for a direct connection.
// `configured` is `api.proxy` (wins when set); `getenv` reads the environment.
result<std::optional<proxy_endpoint>> choose_proxy(std::string_view configured, std::string_view target_host,
                                                   const std::function<const char*(const char*)>& getenv);

}  // namespace isync::http
