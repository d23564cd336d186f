#pragma once
// The daemon's configuration: the YAML file's public contract as a plain
// aggregate. Defaults here are the documented defaults.

#include "config/addresses.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace isync::config {

using duration = std::chrono::milliseconds;

struct pair {
    std::string app_id;
    std::string tld;

    bool operator==(const pair&) const = default;
    auto operator<=>(const pair&) const = default;
};

struct api_config {
    std::string base_url = "https://api-gw.perimeterx.com";
    endpoint base{"api-gw.perimeterx.com", 443, ""};  // base_url, parsed
    std::string token_file;                           // empty: not configured
    std::string ca_file;                              // empty: system store only
    duration timeout = std::chrono::seconds(30);
    int page_size = 50;
    std::uint64_t max_body = 64ull << 20;         // bytes
    std::string proxy;                            // empty: https_proxy / HTTPS_PROXY env (password shown as ***)
    std::optional<proxy_endpoint> proxy_address;  // proxy, parsed (nullopt when empty)
    std::string proxy_password_file;              // the proxy user's password (empty: not configured)
    bool insecure_skip_tls_verify = false;        // for tests only; warns at every start
    // Requests in flight to the API at most (the adaptive limit's ceiling).
    // 8: a common gateway cap, where each refusal pauses every request for
    // its Retry-After; above it, the cap has to be learned by a refusal.
    int max_in_flight = 8;
};

struct retry_config {
    int max_attempts = 6;
    duration base_delay = std::chrono::milliseconds(500);
    duration max_delay = std::chrono::seconds(60);
};

struct sync_config {
    duration interval = std::chrono::minutes(5);
    duration initial_lookback = std::chrono::hours(24);
    duration overlap = std::chrono::minutes(15);
    duration settle = std::chrono::minutes(1);
    // An upper bound on one slice's span; slices are planned by incident count.
    duration max_window = std::chrono::hours(24 * 31);
    int slice_incidents = 5000;  // a window holding more is split by time
    int concurrency = 4;
    std::vector<pair> pairs;  // polled always; discovery adds to them
    // Pair discovery: poll every enabled application x domain that
    // GET /v1/account-settings lists, refreshed every discover_interval,
    // picked by APP/DOMAIN globs (config/pair_pattern.hpp).
    bool discover = false;
    duration discover_interval = std::chrono::hours(1);
    std::vector<std::string> include;  // empty: every discovered pair
    std::vector<std::string> exclude;
};

struct database_config {
    std::string path = "/var/lib/incident-sync/incidents.db";
    // A PostgreSQL connection URI (postgresql://user@host/db?sslmode=...):
    // when set, the store is PostgreSQL and `path` is not used. Never holds a
    // password (the loader refuses one): see password_file.
    std::string url;
    std::string password_file;  // the PostgreSQL password (empty: not configured)
    // PostgreSQL: how long a daemon's claim on a pair lasts unless renewed
    // (every third of it); a daemon that dies loses its pairs after this.
    duration lease_ttl = std::chrono::seconds(30);
    duration busy_timeout = std::chrono::seconds(5);
};

struct log_config {
    std::string level = "info";   // trace|debug|info|warn|error
    std::string format = "text";  // text|json
};

struct metrics_config {
    std::string listen = "127.0.0.1:9464";                                      // host:port; empty: no metrics endpoint
    std::optional<listen_address> address = listen_address{"127.0.0.1", 9464};  // listen, parsed
};

// Whether the store is PostgreSQL (database.url) rather than SQLite.
inline bool uses_postgresql(const database_config& d) { return !d.url.empty(); }

struct config {
    std::filesystem::path source;  // the file it was loaded from
    api_config api;
    retry_config retry;
    sync_config sync;
    database_config database;
    log_config log;
    metrics_config metrics;
    // Accepted but worth a second look, one line each, in the loader's
    // "<file>:<line>:<col>: <dotted.key>: <problem>; <advice>" form, e.g. a
    // tiny api.page_size. `check-config` prints them; `run`/`once` log them.
    std::vector<std::string> warnings;
};

}  // namespace isync::config
