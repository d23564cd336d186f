#pragma once
// Building GET /v1/incidents request targets. Sans-io.

#include "config/addresses.hpp"
#include "config/config.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace isync::api {

// `api.base_url` taken apart (config/addresses.hpp holds its one parser).
using endpoint = config::endpoint;

// config::parse_base_url as an errc::config error that names the key.
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
