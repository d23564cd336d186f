#pragma once
// `<database>.progress`: what a running daemon is doing right now, for
// `incident-syncd status` in another process (the database only holds what
// was committed). The daemon rewrites it every few seconds (a temporary file
// renamed over it, so a reader never sees half of one) and removes it when it
// stops; a reader trusts it only while the pid in it is alive and is the pid
// in `<database>.lock`.

#include "config/config.hpp"
#include "sync/sync_stats.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace isync::ops {

struct daemon_progress {
    long pid = 0;
    std::int64_t updated_ms = 0;
    std::map<config::pair, sync::pair_progress> pairs;  // polling now
    // Every pair the daemon polls (sync.pairs and what discovery selected);
    // nullopt in a file without the key.
    std::optional<std::vector<config::pair>> polled;
};

// The progress file of `database_path`.
std::string progress_path(const std::string& database_path);

std::string render_progress(const daemon_progress& p);
// errc::parse when `json` is not a progress file this version wrote.
result<daemon_progress> parse_progress(std::string_view json);

// Writes atomically (temporary file + rename). errc::database on failure.
result<void> write_progress_file(const std::string& database_path, const daemon_progress& p);
void remove_progress_file(const std::string& database_path) noexcept;

// The running daemon's progress: nullopt when there is no file, it cannot be
// read, or its pid is not alive and holding the lock file.
std::optional<daemon_progress> read_live_progress(const std::string& database_path);

// Incidents per second and the seconds left, from what a poll has done by `now_ms`.
struct progress_rate {
    double per_second = 0;
    std::optional<std::int64_t> eta_seconds;  // unknown until the API's count is known
};
progress_rate rate_of(const sync::pair_progress& p, std::int64_t now_ms);

}  // namespace isync::ops
