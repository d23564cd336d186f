#pragma once
// Reading `sync_state`: each pair's watermark and last outcome, as stored.
// Shared by `status` (a read-only connection of its own) and the engine (which
// seeds its health facts from it at start), so both read one thing one way.

#include "config/config.hpp"
#include "util/error.hpp"

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace isync::store {

struct stored_pair_state {
    config::pair pair;
    std::optional<std::int64_t> watermark_ms;
    std::optional<std::int64_t> last_success_ms;
    std::optional<std::int64_t> last_error_ms;
    std::optional<std::string> last_error;
    bool auth_failing = false;
    std::int64_t incidents = 0;  // rows in `incidents` for the pair
    // Daemons sharing a database (PostgreSQL): the daemon holding the pair's
    // lease now (host:pid:random), nullopt when none does.
    std::optional<std::string> lease_owner;
};

// Every row of sync_state, oldest pair first; `path` names the file in errors.
// With `count_incidents`, also counts each pair's incidents (an indexed count).
// Fails with errc::database when the table cannot be read.
result<std::vector<stored_pair_state>> read_sync_states(SQLite::Database& db, std::string_view path,
                                                        bool count_incidents);

}  // namespace isync::store
