#pragma once
// `check-config --online`: one request per pair with the real token, to tell
// an operator on the first day whether the API is reachable (DNS, TCP, TLS and
// why a certificate is refused), whether the token is accepted, whether each
// appId/tld is, and whether a pair holds any incident at all in
// sync.initial_lookback (a mistyped tld answers 200 with nothing in it).
// With sync.discover, it first asks GET /v1/account-settings which pairs
// discovery would poll, and checks those too.

#include "api/account_settings.hpp"
#include "config/config.hpp"
#include "config/secret.hpp"
#include "sync/engine.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace isync::app {

struct pair_check {
    config::pair pair;
    bool answered = false;              // HTTP 200 with a page that parsed
    std::optional<std::int64_t> count;  // paging.count over initial_lookback
    std::string verdict;                // one line for people
};

// What discovery found (sync.discover only).
struct discovery_check {
    std::optional<std::vector<api::application>> applications;  // nullopt: it failed
    std::string failure;                                        // why, when it failed
    std::vector<config::pair> selected;                         // what it would poll
};

struct online_report {
    std::optional<discovery_check> discovery;  // with sync.discover
    std::vector<pair_check> pairs;             // sync.pairs and what discovery selected
    bool ok() const;                           // discovery (if on) and every pair answered
};

// Discovers (when on), then checks every pair, one request each, over one connection.
boost::asio::awaitable<online_report> check_online(boost::asio::any_io_executor executor,
                                                   boost::asio::ssl::context& tls, sync::engine_settings settings,
                                                   config::secret token, std::int64_t now_ms);

// The report as printed: the connection, discovery's applications, one line per pair.
std::string format_online_report(const online_report& report, const sync::engine_settings& settings);

}  // namespace isync::app
