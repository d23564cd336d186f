#pragma once
// `incident-syncd export`: the database as JSON lines on stdout, for a log
// shipper (Vector, Filebeat, a SIEM's forwarder). One object per line,
// streamed row by row from a read-only connection in the table's own order,
// so memory stays flat whatever the database holds, and a running daemon
// keeps writing meanwhile (the export reads one snapshot).

#include "pgstore/pg_connection.hpp"
#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace isync::app {

struct export_options {
    std::string database_path{};
    // database.url's connection: PostgreSQL instead of the file (a cursor in
    // one read-only snapshot, 1,000 rows at a time).
    std::optional<pgstore::connect_options> postgresql{};
    std::chrono::milliseconds busy_timeout{5000};
    // Incidents whose last_synced_at (a new version received), or changes
    // whose observed_at, is at or after this time; everything when unset.
    std::optional<std::int64_t> since_ms{};
    bool changes = false;  // the change history instead of the incidents
};

struct export_summary {
    std::int64_t lines = 0;
    bool reader_went_away = false;  // stdout's reader closed the pipe (`| head`): not an error
};

// Writes the lines to `out`. Fails with errc::database when the database is
// missing or unreadable, errc::io when a line cannot be written.
result<export_summary> export_jsonl(const export_options& options, std::FILE* out);

}  // namespace isync::app
