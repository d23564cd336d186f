#pragma once
// Choosing an HTTP CONNECT proxy: `api.proxy`, else `https_proxy` /
// `HTTPS_PROXY`, unless `no_proxy` / `NO_PROXY` exempts the host. Sans-io.

#include "config/addresses.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace isync::http {

using proxy_endpoint = config::proxy_endpoint;

// config::parse_proxy_url as $https_proxy is read:
// `http://[user[:password]@]host[:port][/]`, the scheme may be omitted.
// Fails with errc::config for other schemes; a message never shows the password.
result<proxy_endpoint> parse_proxy_url(std::string_view url);

// True when a `no_proxy` list (comma separated; `*`, `host`, `.domain`,
// `domain`, optional `:port` ignored) exempts `host`.
bool no_proxy_matches(std::string_view no_proxy, std::string_view host);

// The proxy to use for `target_host`, or nullopt for a direct connection.
// `configured` is `api.proxy` as the loader parsed it (wins when set);
// `getenv` reads the environment.
result<std::optional<proxy_endpoint>> choose_proxy(const std::optional<proxy_endpoint>& configured,
                                                   std::string_view target_host,
                                                   const std::function<const char*(const char*)>& getenv);

}  // namespace isync::http
