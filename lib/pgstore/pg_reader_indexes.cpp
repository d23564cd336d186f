#include "pgstore/pg_reader_indexes.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <string>

namespace isync::pgstore {

namespace {

// One key for the drop and the build (pg_schema.cpp's migration lock is another).
constexpr std::string_view lock_key = "7305486150612930818";

// Runs `body` in a transaction holding the advisory lock, unless another
// session holds it now (then false, nothing done).
template <class Body>
bool with_lock(pg_connection& conn, Body body) {
    conn.exec("BEGIN");
    try {
        if (conn.exec(fmt::format("SELECT pg_try_advisory_xact_lock({})", lock_key)).text(0, 0) != "t") {
            conn.exec("ROLLBACK");
            return false;
        }
        body();
        conn.exec("COMMIT");
        return true;
    } catch (...) {
        try {
            if (conn.transaction_open()) conn.exec("ROLLBACK");
        } catch (...) {  // the connection is gone: the server rolled back
        }
        throw;
    }
}

}  // namespace

const std::array<store::deferred_index, 6> pg_deferred_indexes{{
    {"incidents_by_pair_last_seen",
     "CREATE INDEX incidents_by_pair_last_seen ON incidents(app_id, host_domain, last_seen)"},
    {"incidents_by_last_seen", "CREATE INDEX incidents_by_last_seen ON incidents(last_seen)"},
    {"incidents_by_risk", "CREATE INDEX incidents_by_risk ON incidents(risk_level, last_seen)"},
    {"incidents_by_script", "CREATE INDEX incidents_by_script ON incidents(script_key)"},
    {"vulnerability_ids_by_id", "CREATE INDEX vulnerability_ids_by_id ON vulnerability_ids(vulnerability_id)"},
    {"vulnerability_ids_by_package",
     "CREATE INDEX vulnerability_ids_by_package ON vulnerability_ids(package, version, vulnerability_id, "
     "incident_last_seen)"},
}};

std::vector<store::deferred_index> missing_pg_deferred_indexes(pg_connection& conn) {
    auto r = conn.exec(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename IN ('incidents', 'vulnerability_ids')");
    std::vector<store::deferred_index> missing;
    for (const auto& index : pg_deferred_indexes) {
        bool present = false;
        for (int i = 0; i < r.rows() && !present; ++i) present = r.text(i, 0) == index.name;
        if (!present) missing.push_back(index);
    }
    return missing;
}

int defer_pg_reader_indexes_while_empty(pg_connection& conn) {
    int dropped = 0;
    try {
        with_lock(conn, [&] {
            if (conn.exec("SELECT EXISTS (SELECT 1 FROM incidents)").text(0, 0) == "t") return;
            dropped = static_cast<int>(pg_deferred_indexes.size() - missing_pg_deferred_indexes(conn).size());
            for (const auto& index : pg_deferred_indexes) conn.exec(fmt::format("DROP INDEX IF EXISTS {}", index.name));
        });
        if (dropped > 0)
            spdlog::info(
                "the database holds no incident yet: {} reader index(es) are built when the first backfill is done",
                dropped);
    } catch (const std::exception& e) {
        spdlog::warn("PostgreSQL {}: could not put off the reader indexes for the first backfill: {}",
                     conn.description(), e.what());
        return 0;
    }
    return dropped;
}

int build_missing_pg_reader_indexes(pg_connection& conn) {
    try {
        if (missing_pg_deferred_indexes(conn).empty()) return 0;
        int built = 0;
        const auto started = std::chrono::steady_clock::now();
        const bool ours = with_lock(conn, [&] {
            // Looked up again under the lock: another daemon may have built them meanwhile.
            for (const auto& index : missing_pg_deferred_indexes(conn)) {
                conn.exec(std::string(index.definition));
                ++built;
            }
        });
        if (!ours) return 0;  // another daemon is building them
        if (built > 0)
            spdlog::info("built {} reader index(es) the first backfill left out in {:.1f} s", built,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        return built;
    } catch (const std::exception& e) {
        spdlog::warn("PostgreSQL {}: building the reader indexes failed (tried again when next idle): {}",
                     conn.description(), e.what());
        return 0;
    }
}

}  // namespace isync::pgstore
