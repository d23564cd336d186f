#pragma once
// Numbered schema migrations, embedded from schema/NNN_name.sql at build time.

#include <string_view>
#include <vector>

namespace isync::store {

struct migration {
    int version;            // NNN; PRAGMA user_version after it is applied
    std::string_view name;  // file name without .sql
    std::string_view sql;
};

// All migrations in ascending version order (generated source).
const std::vector<migration>& embedded_migrations();

}  // namespace isync::store
