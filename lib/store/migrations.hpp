#pragma once
// Numbered schema migrations, embedded from schema/<backend>/NNN_name.sql at
// build time: schema/sqlite/ and schema/postgresql/, numbered independently.

#include <string_view>
#include <vector>

namespace isync::store {

struct migration {
    int version;            // NNN; SQLite's PRAGMA user_version after it is applied,
                            // a row of schema_migrations in PostgreSQL
    std::string_view name;  // file name without .sql
    std::string_view sql;
};

// What a migration says it does to an existing database's rows when that is
// slow: the text of its `-- rewrites: ...` line (007: rebuilds incidents),
// empty for one that only adds. The daemon logs it and, while it runs,
// reports progress (open_options::still_migrating).
inline std::string_view rewrite_note(const migration& m) {
    constexpr std::string_view marker = "-- rewrites: ";
    const auto at = m.sql.find(marker);
    if (at == std::string_view::npos) return {};
    const auto start = at + marker.size();
    return m.sql.substr(start, m.sql.find('\n', start) - start);
}

// All migrations in ascending version order (generated sources).
const std::vector<migration>& embedded_migrations();             // SQLite
const std::vector<migration>& embedded_postgresql_migrations();  // PostgreSQL

}  // namespace isync::store
