#pragma once
// The PostgreSQL schema: migrations from schema/postgresql/, applied in order,
// in one transaction, each with its row in schema_migrations, under an
// advisory lock so that daemons starting together migrate once.

#include "pgstore/pg_connection.hpp"
#include "util/error.hpp"

namespace isync::pgstore {

// The highest version in schema/postgresql/.
int latest_postgresql_schema_version();

// Applies what the database lacks. Fails with errc::database when the
// database was made by a newer incident-sync (it is left alone) or a
// migration fails (rolled back: the database keeps its previous version).
result<void> migrate(pg_connection& conn);

// The database's schema version without changing anything (0: no schema
// yet); errc::database when it is newer than this build's.
result<int> check_schema(pg_connection& conn);

}  // namespace isync::pgstore
