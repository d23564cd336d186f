#include "app/export_jsonl.hpp"

#include "pgstore/pg_connection.hpp"
#include "store/database.hpp"
#include "util/timestamp.hpp"

#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

namespace isync::app {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;
// One row's columns as text (nullopt: NULL), in the order of the queries below.
using row = std::vector<std::optional<std::string_view>>;

// A text column as a JSON string, or null.
void text_or_null(json_writer& w, const char* key, const std::optional<std::string_view>& c) {
    w.Key(key);
    if (!c) {
        w.Null();
        return;
    }
    w.String(c->data(), static_cast<rapidjson::SizeType>(c->size()));
}

// The unary + keeps SQLite off the time indexes: the rows then come in the
// table's own order (rowid) with no sort, which would hold the whole result.
constexpr const char* incidents_sql =
    "SELECT id, app_id, host_domain, first_synced_at, last_synced_at, content_changed_at, raw_json "
    "FROM incidents WHERE ?1 IS NULL OR +last_synced_at >= ?1 ORDER BY incident_key";
constexpr const char* changes_sql =
    "SELECT c.change_id, i.id, i.app_id, i.host_domain, c.observed_at, c.field, c.old_value, c.new_value "
    "FROM incident_changes c JOIN incidents i ON i.incident_key = c.incident_key "
    "WHERE ?1 IS NULL OR +c.observed_at >= ?1 ORDER BY c.change_id";

// The same on PostgreSQL, timestamps in the form SQLite stores; {} is the
// condition on the time (TRUE for everything).
#define ISYNC_ISO(column) "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
constexpr const char* pg_incidents_sql = "SELECT id, app_id, host_domain, " ISYNC_ISO("first_synced_at") ", " ISYNC_ISO(
    "last_synced_at") ", " ISYNC_ISO("content_changed_at") ", raw_json FROM incidents WHERE {} ORDER BY incident_key";
constexpr const char* pg_changes_sql =
    "SELECT c.change_id, i.id, i.app_id, i.host_domain, " ISYNC_ISO(
        "c.observed_at") ", c.field, c.old_value, c.new_value FROM incident_changes c JOIN incidents i ON "
                         "i.incident_key = c.incident_key WHERE {} ORDER BY c.change_id";
#undef ISYNC_ISO

void incident_line(json_writer& w, const row& r) {
    w.StartObject();
    text_or_null(w, "id", r[0]);
    text_or_null(w, "app_id", r[1]);
    text_or_null(w, "host_domain", r[2]);
    text_or_null(w, "first_synced_at", r[3]);
    text_or_null(w, "last_synced_at", r[4]);
    text_or_null(w, "content_changed_at", r[5]);
    // The incident as the API sent it: the stored bytes, not a re-encoding
    // (but for line breaks between tokens, see export_jsonl).
    w.Key("incident");
    const auto raw = r[6].value_or("null");
    w.RawValue(raw.data(), raw.size(), rapidjson::kObjectType);
    w.EndObject();
}

void change_line(json_writer& w, const row& r) {
    w.StartObject();
    w.Key("change_id");
    std::int64_t id = 0;
    if (r[0]) std::from_chars(r[0]->data(), r[0]->data() + r[0]->size(), id);
    w.Int64(id);
    text_or_null(w, "incident_id", r[1]);
    text_or_null(w, "app_id", r[2]);
    text_or_null(w, "host_domain", r[3]);
    text_or_null(w, "observed_at", r[4]);
    text_or_null(w, "field", r[5]);
    text_or_null(w, "old_value", r[6]);
    text_or_null(w, "new_value", r[7]);
    w.EndObject();
}

// Writes rows as lines; false once the reader went away or writing failed.
class line_writer {
public:
    line_writer(const export_options& options, std::FILE* out, export_summary& summary)
        : options_(options), out_(out), summary_(summary) {}

    // errc::io on a write error; summary.reader_went_away on EPIPE.
    result<bool> write(const row& r) {
        object_.Clear();
        json_writer w(object_);
        if (options_.changes)
            change_line(w, r);
        else
            incident_line(w, r);
        // One object per line: the API's bodies may be pretty-printed, and
        // a raw line break can only be whitespace between JSON tokens (in
        // a string it is escaped), so a space means the same.
        line_.assign(object_.GetString(), object_.GetSize());
        std::replace_if(
            line_.begin(), line_.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
        line_ += '\n';
        if (std::fwrite(line_.data(), 1, line_.size(), out_) != line_.size()) {
            if (errno == EPIPE) {
                summary_.reader_went_away = true;
                return false;
            }
            return make_error(
                errc::io, fmt::format("export: writing line {} failed: {}", summary_.lines + 1, std::strerror(errno)));
        }
        ++summary_.lines;
        return true;
    }

private:
    const export_options& options_;
    std::FILE* out_;
    export_summary& summary_;
    rapidjson::StringBuffer object_;
    std::string line_;
};

result<void> export_sqlite(const export_options& options, line_writer& lines, const export_summary& summary) {
    auto db = store::open_database({options.database_path, options.busy_timeout, /*read_only=*/true});
    if (!db) return db.error();
    try {
        SQLite::Statement st(**db, options.changes ? changes_sql : incidents_sql);
        if (options.since_ms) st.bind(1, util::format_iso8601_ms(*options.since_ms));
        row r;
        while (st.executeStep()) {
            r.clear();
            for (int i = 0; i < st.getColumnCount(); ++i) {
                const SQLite::Column c = st.getColumn(i);
                if (c.isNull())
                    r.emplace_back(std::nullopt);
                else
                    r.emplace_back(std::string_view(c.getText(), static_cast<std::size_t>(c.getBytes())));
            }
            auto more = lines.write(r);
            if (!more) return more.error();
            if (!*more) return {};
        }
    } catch (const SQLite::Exception& e) {
        return make_error(errc::database, fmt::format("export: reading {} failed after {} line(s): {}",
                                                      options.database_path, summary.lines, e.what()));
    }
    return {};
}

// A cursor in a read-only transaction: one snapshot, 1,000 rows in memory at a time.
result<void> export_postgresql(const export_options& options, line_writer& lines, const export_summary& summary) {
    auto conn = pgstore::pg_connection::connect(*options.postgresql);
    if (!conn) return conn.error();
    std::string when = "TRUE";
    if (options.since_ms)
        when = fmt::format("{} >= '{}'::timestamptz", options.changes ? "c.observed_at" : "last_synced_at",
                           util::format_iso8601_ms(*options.since_ms));
    try {
        (*conn)->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        (*conn)->exec("DECLARE export_rows NO SCROLL CURSOR FOR " +
                      fmt::format(fmt::runtime(options.changes ? pg_changes_sql : pg_incidents_sql), when));
        row r;
        for (;;) {
            auto batch = (*conn)->exec("FETCH 1000 FROM export_rows");
            if (batch.rows() == 0) break;
            for (int i = 0; i < batch.rows(); ++i) {
                r.clear();
                for (int c = 0; c < batch.columns(); ++c)
                    r.emplace_back(batch.is_null(i, c) ? std::nullopt
                                                       : std::optional<std::string_view>(batch.text(i, c)));
                auto more = lines.write(r);
                if (!more) return more.error();
                if (!*more) return {};
            }
        }
        (*conn)->exec("COMMIT");
    } catch (const std::exception& e) {
        auto err = pgstore::pg_error(e, (*conn)->description(), "exporting", false);
        err.message += fmt::format(" (after {} line(s))", summary.lines);
        return err;
    }
    return {};
}

}  // namespace

result<export_summary> export_jsonl(const export_options& options, std::FILE* out) {
    export_summary summary;
    line_writer lines(options, out, summary);
    auto done =
        options.postgresql ? export_postgresql(options, lines, summary) : export_sqlite(options, lines, summary);
    if (!done) return done.error();
    if (summary.reader_went_away) return summary;
    if (std::fflush(out) != 0) {
        if (errno == EPIPE) {
            summary.reader_went_away = true;
            return summary;
        }
        return make_error(errc::io, fmt::format("export: writing the output failed: {}", std::strerror(errno)));
    }
    return summary;
}

}  // namespace isync::app
