#pragma once
// What only readers use, left out while a first backfill fills an empty
// database and built when the daemon is next idle (SQLite does the same in
// store/reader_indexes.hpp): the four secondary indexes on incidents and the
// two on vulnerability_ids. No write reads them, and keeping them row by row
// was a fifth of a fresh 100k backfill's time on PostgreSQL (7.0 s against
// 9.1 s; building them at the end: 0.6 s).
//
// Several daemons: both steps take one advisory lock, so a drop and a build
// never interleave, and one daemon builds while the others skip.

#include "pgstore/pg_connection.hpp"
#include "store/deferred_index.hpp"

#include <array>
#include <vector>

namespace isync::pgstore {

extern const std::array<store::deferred_index, 6> pg_deferred_indexes;

// Those of pg_deferred_indexes the database lacks (throws like any statement).
std::vector<store::deferred_index> missing_pg_deferred_indexes(pg_connection& conn);

// Outside a transaction. When the database holds no incident, drops the
// deferred indexes; returns how many it dropped. Errors are only logged: all
// of it is for speed.
int defer_pg_reader_indexes_while_empty(pg_connection& conn);

// Outside a transaction. Builds the missing ones in one transaction, unless
// another daemon is building them now; returns how many it built. Errors are
// only logged (the next idle tries again).
int build_missing_pg_reader_indexes(pg_connection& conn);

}  // namespace isync::pgstore
