#pragma once
// Building GET /v1/incidents request targets. Sans-io.

#include "config/config.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace isync::api {

// `api.base_url` taken apart: https://host[:port][/path-prefix].
struct endpoint {
    std::string host;
    std::uint16_t port = 443;
    std::string path_prefix;  // without a trailing slash; may be empty

    bool operator==(const endpoint&) const = default;
};

// Fails with errc::config when the URL is not https://host[:port][/prefix]
// (no query, fragment or user info).
result<endpoint> parse_base_url(std::string_view url);

struct incidents_query {
    config::pair pair;
    std::int64_t from_ms = 0;
    std::int64_t to_ms = 0;
    std::int64_t skip = 0;
    int take = 50;
};

// The request target, e.g.
// `/prefix/v1/incidents?appId=PXa&tld=example.com&from=1&to=2&skip=0&take=50`,
// every value percent-encoded.
std::string incidents_target(const endpoint& ep, const incidents_query& q);

}  // namespace isync::api
