#pragma once
// `incident-syncd status`: each configured pair's state, read from the
// database alone (works while the daemon runs, or when it does not).

#include "config/config.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace isync::app {

struct pair_report {
    config::pair pair;
    std::optional<std::string> watermark;        // ISO-8601
    std::optional<std::string> last_success_at;
    std::optional<std::string> last_error_at;
    std::optional<std::string> last_error;
    bool auth_failing = false;
    std::int64_t incidents = 0;
    bool healthy = false;  // succeeded within three intervals of `now`
};

// Reads the state of every pair in `cfg` (and of pairs only the database
// knows). Fails with errc::database when the file cannot be read.
result<std::vector<pair_report>> read_status(const config::config& cfg, std::int64_t now_ms);

std::string format_status_table(const std::vector<pair_report>& reports);
std::string format_status_json(const std::vector<pair_report>& reports);

}  // namespace isync::app
