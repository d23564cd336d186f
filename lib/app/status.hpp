#pragma once
// `incident-syncd status`: each pair's state, read from the database (works
// while the daemon runs, or when it does not) and, while a daemon runs, its
// progress file. Health is judged by ops::judge_health, the rule /readyz uses.

#include "config/config.hpp"
#include "ops/health.hpp"
#include "ops/progress_file.hpp"
#include "pgstore/pg_connection.hpp"
#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace isync::app {

struct pair_report {
    config::pair pair;
    std::optional<std::string> watermark;  // ISO-8601
    std::optional<std::string> last_success_at;
    std::optional<std::string> last_error_at;
    std::optional<std::string> last_error;  // only when no success came after it
    bool auth_failing = false;
    std::int64_t incidents = 0;
    bool configured = true;  // false: only the database knows the pair
    ops::pair_state state = ops::pair_state::failing;
    std::string reason;  // the health rule's words
    bool healthy = false;
    std::optional<sync::pair_progress> progress;  // while the running daemon polls it
    std::optional<std::string> lease_owner;       // PostgreSQL: the daemon polling it (holding its lease)
};

struct status_options {
    std::string database_path;
    // database.url's connection (with its password): PostgreSQL instead of the file.
    std::optional<pgstore::connect_options> postgresql;
    std::vector<config::pair> configured;  // empty: judge every pair the database knows
    // sync.discover: the pairs polled are the running daemon's (its progress
    // file says which); with no daemon running, every pair the database knows.
    bool discover = false;
    ops::health_policy policy{std::chrono::minutes(5)};
    std::chrono::milliseconds busy_timeout{5000};
};

// The options `status --config` implies.
status_options status_options_for(const config::config& cfg);

struct status_result {
    std::vector<pair_report> pairs;
    std::optional<ops::daemon_progress> daemon;  // the running daemon, if any
    ops::health_verdict health;
    std::string postgresql;  // "user@host:port/db" when the store is PostgreSQL
};

// Reads every configured pair (and pairs only the database knows). Fails with
// errc::database when the file cannot be read; a database that does not exist
// yet says "no database yet" and what to run.
result<status_result> read_status(const status_options& options, std::int64_t now_ms);
// The same for `status --config`: the pairs are from `cfg`.
result<std::vector<pair_report>> read_status(const config::config& cfg, std::int64_t now_ms);

std::string format_status_table(const std::vector<pair_report>& reports);
std::string format_status_json(const std::vector<pair_report>& reports);
// Table (or JSON) plus the daemon line and the health summary, as printed.
std::string format_status(const status_result& r, bool json, std::int64_t now_ms);

}  // namespace isync::app
