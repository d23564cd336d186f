#pragma once
// The command line: `incident-syncd <command> [--config FILE] [options]`.

#include "util/error.hpp"

#include <optional>
#include <string>
#include <vector>

namespace isync::app {

enum class command { run, once, status, check_config, export_lines, resync, help, version };

struct arguments {
    command cmd = command::help;
    std::string config_path = "/etc/incident-sync/incident-sync.yaml";
    std::optional<std::string> log_level;  // overrides log.level
    bool json = false;                     // status --json
    bool check = false;                    // status --check (health check)
    std::optional<std::string> database;   // status/export --database PATH: no config needed
    bool config_given = false;             // --config was on the command line
    bool online = false;                   // check-config --online: one request per pair
    std::string format = "jsonl";          // export --format (jsonl is the one there is)
    bool format_given = false;
    std::optional<std::string> since;  // export --since TIME|DURATION
    bool changes = false;              // export --changes: the change history
    std::optional<std::string> pair;   // resync APP/TLD
    bool all_pairs = false;            // resync --all
    std::optional<std::string> from;   // resync --from TIME|DURATION
    std::optional<std::string> to;     // resync --to TIME|DURATION (default: now - sync.settle)
};

// Fails with errc::usage and a message that says what was wrong.
result<arguments> parse_arguments(const std::vector<std::string>& argv);

// The --help text.
std::string usage_text();

// Exit codes (sysexits.h where one fits).
inline constexpr int exit_ok = 0;
inline constexpr int exit_sync_failed = 1;  // `once`: a pair failed; `status --check`: unhealthy
inline constexpr int exit_usage = 64;       // EX_USAGE
inline constexpr int exit_database = 74;    // EX_IOERR: the database cannot be opened or migrated
inline constexpr int exit_locked = 75;      // EX_TEMPFAIL: another incident-syncd holds the database
inline constexpr int exit_config = 78;      // EX_CONFIG

}  // namespace isync::app
