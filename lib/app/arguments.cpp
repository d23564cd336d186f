#include "app/arguments.hpp"

#include <fmt/format.h>

namespace isync::app {

std::string usage_text() {
    return R"(incident-syncd: keeps an SQLite database in step with HUMAN Code Defender's incident API.

Usage:
  incident-syncd run          [--config FILE] [--log-level LEVEL]   run until SIGTERM (SIGHUP reloads)
  incident-syncd once         [--config FILE] [--log-level LEVEL]   one pass over every pair, then exit
  incident-syncd status       [--config FILE | --database PATH] [--json] [--check]
                                                                    each pair's state, health and progress
  incident-syncd check-config [--config FILE] [--online]            validate the configuration and token;
                                                                    --online: one request per pair
  incident-syncd resync       APP/TLD | --all --from TIME [--to TIME] [--config FILE]
                                                                    re-read a range into the database; no
                                                                    watermark moves (refused while a daemon runs)
  incident-syncd export       [--config FILE | --database PATH] [--format jsonl] [--since TIME] [--changes]
                                                                    incidents (or their changes) as JSON
                                                                    lines on stdout, for a log shipper
  incident-syncd --help | --version

Options:
  --config FILE      configuration file (default /etc/incident-sync/incident-sync.yaml)
  --log-level LEVEL  trace, debug, info, warn or error (overrides log.level)
  --json             status: print JSON instead of a table
  --check            status: exit 1 unless every configured pair is healthy (synced within three
                     intervals, or a backfill in progress); the rule /readyz uses
  --online           check-config: also ask the API once per pair (DNS, TCP, TLS, token, appId/tld,
                     incidents in initial_lookback); exit 1 unless every pair answered
  --database PATH    status, export: read this database without a configuration file (status
                     judges every pair it holds, with the default 5m interval)
  --format jsonl     export: one JSON object per line (the only format)
  --since TIME       export: only incidents received new or changed at or after TIME (or changes
                     observed then), as ISO 8601 (2026-12-01T00:00:00Z) or a duration back from
                     now (24h, 7d)
  --changes          export: the change history (incident_changes) instead of the incidents
  --all              resync: every configured pair (instead of one APP/TLD)
  --from TIME        resync: the range's start, ISO 8601 or a duration back from now (7d)
  --to TIME          resync: the range's end (default: now less sync.settle)

Exit codes: 0 ok, 1 a sync failed (once, resync) or unhealthy (status --check), 64 usage error,
74 database cannot be opened (or export's output cannot be written), 75 another incident-syncd holds the database, 78 configuration error.
)";
}

result<arguments> parse_arguments(const std::vector<std::string>& argv) {
    arguments args;
    bool have_command = false;
    auto usage_error = [](std::string message) {
        return make_error(errc::usage, message + " (see incident-syncd --help)");
    };
    for (std::size_t i = 1; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        auto value = [&](const char* flag) -> result<std::string> {
            if (i + 1 >= argv.size()) return usage_error(fmt::format("{} needs a value", flag));
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            args.cmd = command::help;
            return args;
        }
        if (a == "--version") {
            args.cmd = command::version;
            return args;
        }
        if (a == "--config" || a == "-c") {
            auto v = value("--config");
            if (!v) return v.error();
            args.config_path = *v;
            args.config_given = true;
        } else if (a.starts_with("--config=")) {
            args.config_path = a.substr(9);
            args.config_given = true;
            if (args.config_path.empty()) return usage_error("--config needs a value");
        } else if (a == "--log-level") {
            auto v = value("--log-level");
            if (!v) return v.error();
            args.log_level = *v;
        } else if (a.starts_with("--log-level=")) {
            args.log_level = a.substr(12);
        } else if (a == "--json") {
            args.json = true;
        } else if (a == "--check") {
            args.check = true;
        } else if (a == "--online") {
            args.online = true;
        } else if (a == "--database") {
            auto v = value("--database");
            if (!v) return v.error();
            if (v->empty()) return usage_error("--database needs a value");
            args.database = *v;
        } else if (a.starts_with("--database=")) {
            args.database = a.substr(11);
            if (args.database->empty()) return usage_error("--database needs a value");
        } else if (a == "--format" || a.starts_with("--format=")) {
            auto v = a == "--format" ? value("--format") : result<std::string>(a.substr(9));
            if (!v) return v.error();
            if (*v != "jsonl") return usage_error(fmt::format("unknown --format \"{}\"; formats: jsonl", *v));
            args.format = *v;
            args.format_given = true;
        } else if (a == "--since" || a.starts_with("--since=")) {
            auto v = a == "--since" ? value("--since") : result<std::string>(a.substr(8));
            if (!v) return v.error();
            if (v->empty()) return usage_error("--since needs a value");
            args.since = *v;
        } else if (a == "--changes") {
            args.changes = true;
        } else if (a == "--all") {
            args.all_pairs = true;
        } else if (a == "--from" || a == "--to" || a.starts_with("--from=") || a.starts_with("--to=")) {
            const bool is_from = a.starts_with("--from");
            const std::string flag = is_from ? "--from" : "--to";
            auto v = a == flag ? value(flag.c_str()) : result<std::string>(a.substr(flag.size() + 1));
            if (!v) return v.error();
            if (v->empty()) return usage_error(flag + " needs a value");
            (is_from ? args.from : args.to) = *v;
        } else if (have_command && args.cmd == command::resync && !a.starts_with("-") && !args.pair) {
            args.pair = a;
        } else if (!a.starts_with("-") && !have_command) {
            have_command = true;
            if (a == "run")
                args.cmd = command::run;
            else if (a == "once")
                args.cmd = command::once;
            else if (a == "status")
                args.cmd = command::status;
            else if (a == "check-config")
                args.cmd = command::check_config;
            else if (a == "export")
                args.cmd = command::export_lines;
            else if (a == "resync")
                args.cmd = command::resync;
            else
                return usage_error(fmt::format(
                    "unknown command \"{}\"; commands: run, once, status, check-config, resync, export", a));
        } else {
            return usage_error(fmt::format("unexpected argument \"{}\"", a));
        }
    }
    if (!have_command)
        return usage_error("no command given; commands: run, once, status, check-config, resync, export");
    if ((args.pair || args.all_pairs || args.from || args.to) && args.cmd != command::resync)
        return usage_error("APP/TLD, --all, --from and --to belong to the resync command");
    if (args.cmd == command::resync) {
        if (args.pair.has_value() == args.all_pairs)
            return usage_error("resync takes one pair as APP/TLD (e.g. PXabc123/example.com) or --all");
        if (args.pair &&
            (args.pair->find('/') == std::string::npos || args.pair->front() == '/' || args.pair->back() == '/'))
            return usage_error(fmt::format("resync: \"{}\" is not APP/TLD (e.g. PXabc123/example.com)", *args.pair));
        if (!args.from) return usage_error("resync needs --from TIME (ISO 8601, or a duration back from now: 7d)");
    }
    if ((args.json || args.check) && args.cmd != command::status)
        return usage_error("--json and --check belong to the status command");
    if (args.database && args.cmd != command::status && args.cmd != command::export_lines)
        return usage_error("--database belongs to the status and export commands");
    if ((args.format_given || args.since || args.changes) && args.cmd != command::export_lines)
        return usage_error("--format, --since and --changes belong to the export command");
    if (args.online && args.cmd != command::check_config)
        return usage_error("--online belongs to the check-config command");
    if (args.database && args.config_given) return usage_error("take --config or --database, not both");
    if (args.log_level && args.log_level->empty()) return usage_error("--log-level needs a value");
    return args;
}

}  // namespace isync::app
