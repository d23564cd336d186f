#include "app/export_jsonl.hpp"

#include "store/database.hpp"
#include "util/timestamp.hpp"

#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace isync::app {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

// A text column as a JSON string, or null.
void text_or_null(json_writer& w, const char* key, const SQLite::Column& c) {
    w.Key(key);
    if (c.isNull()) {
        w.Null();
        return;
    }
    const char* text = c.getText();
    w.String(text, static_cast<rapidjson::SizeType>(c.getBytes()));
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

void incident_line(json_writer& w, SQLite::Statement& st) {
    w.StartObject();
    text_or_null(w, "id", st.getColumn(0));
    text_or_null(w, "app_id", st.getColumn(1));
    text_or_null(w, "host_domain", st.getColumn(2));
    text_or_null(w, "first_synced_at", st.getColumn(3));
    text_or_null(w, "last_synced_at", st.getColumn(4));
    text_or_null(w, "content_changed_at", st.getColumn(5));
    // The incident as the API sent it: the stored bytes, not a re-encoding
    // (but for line breaks between tokens, see export_jsonl).
    const SQLite::Column raw = st.getColumn(6);
    w.Key("incident");
    w.RawValue(raw.getText(), static_cast<std::size_t>(raw.getBytes()), rapidjson::kObjectType);
    w.EndObject();
}

void change_line(json_writer& w, SQLite::Statement& st) {
    w.StartObject();
    w.Key("change_id");
    w.Int64(st.getColumn(0).getInt64());
    text_or_null(w, "incident_id", st.getColumn(1));
    text_or_null(w, "app_id", st.getColumn(2));
    text_or_null(w, "host_domain", st.getColumn(3));
    text_or_null(w, "observed_at", st.getColumn(4));
    text_or_null(w, "field", st.getColumn(5));
    text_or_null(w, "old_value", st.getColumn(6));
    text_or_null(w, "new_value", st.getColumn(7));
    w.EndObject();
}

}  // namespace

result<export_summary> export_jsonl(const export_options& options, std::FILE* out) {
    auto db = store::open_database({options.database_path, options.busy_timeout, /*read_only=*/true});
    if (!db) return db.error();
    export_summary summary;
    try {
        SQLite::Statement st(**db, options.changes ? changes_sql : incidents_sql);
        if (options.since_ms) st.bind(1, util::format_iso8601_ms(*options.since_ms));
        rapidjson::StringBuffer object;
        std::string line;
        while (st.executeStep()) {
            object.Clear();
            json_writer w(object);
            if (options.changes)
                change_line(w, st);
            else
                incident_line(w, st);
            // One object per line: the API's bodies may be pretty-printed, and
            // a raw line break can only be whitespace between JSON tokens (in
            // a string it is escaped), so a space means the same.
            line.assign(object.GetString(), object.GetSize());
            std::replace_if(
                line.begin(), line.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
            line += '\n';
            if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) {
                if (errno == EPIPE) {
                    summary.reader_went_away = true;
                    return summary;
                }
                return make_error(errc::io, fmt::format("export: writing line {} failed: {}", summary.lines + 1,
                                                        std::strerror(errno)));
            }
            ++summary.lines;
        }
    } catch (const SQLite::Exception& e) {
        return make_error(errc::database, fmt::format("export: reading {} failed after {} line(s): {}",
                                                      options.database_path, summary.lines, e.what()));
    }
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
