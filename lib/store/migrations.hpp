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

// All migrations in ascending version order (generated sources).
const std::vector<migration>& embedded_migrations();             // SQLite
const std::vector<migration>& embedded_postgresql_migrations();  // PostgreSQL

}  // namespace isync::store
