#include "pgstore/pg_schema.hpp"

#include "store/migrations.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace isync::pgstore {
namespace {

// Any constant: the daemons of one database agree on it.
constexpr const char* migration_lock = "SELECT pg_advisory_xact_lock(7305486150612930817)";

int applied_version(pg_connection& conn) {
    auto exists = conn.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (exists.text(0, 0) != "t") return 0;
    auto r = conn.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    return static_cast<int>(r.int64(0, 0));
}

error newer_schema(const pg_connection& conn, int found) {
    return make_error(errc::database,
                      fmt::format("PostgreSQL database {}: its schema is version {}, made by a newer incident-sync "
                                  "(this one knows up to {}); upgrade incident-syncd, or point database.url at "
                                  "another database",
                                  conn.description(), found, latest_postgresql_schema_version()));
}

}  // namespace

int latest_postgresql_schema_version() {
    const auto& all = store::embedded_postgresql_migrations();
    return all.empty() ? 0 : all.back().version;
}

result<int> check_schema(pg_connection& conn) {
    try {
        const int found = applied_version(conn);
        if (found > latest_postgresql_schema_version()) return newer_schema(conn, found);
        return found;
    } catch (const std::exception& e) {
        return pg_error(e, conn.description(), "reading the schema version", false);
    }
}

result<void> migrate(pg_connection& conn) {
    try {
        conn.exec("BEGIN");
        conn.exec(migration_lock);
        conn.exec(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())");
        const int found = applied_version(conn);
        if (found > latest_postgresql_schema_version()) {
            conn.exec("ROLLBACK");
            return newer_schema(conn, found);
        }
        for (const auto& m : store::embedded_postgresql_migrations()) {
            if (m.version <= found) continue;
            conn.exec(std::string(m.sql));
            conn.exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                      {std::to_string(m.version), std::string(m.name)});
            spdlog::info("PostgreSQL database {}: applied schema migration {}", conn.description(), m.name);
        }
        conn.exec("COMMIT");
        return {};
    } catch (const std::exception& e) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
        }
        return pg_error(e, conn.description(), "migrating the schema", false);
    }
}

}  // namespace isync::pgstore
