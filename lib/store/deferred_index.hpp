#pragma once
// An index that a first backfill builds at its end instead of row by row
// (SQLite: store/reader_indexes.hpp; PostgreSQL: pgstore/pg_reader_indexes.hpp).

#include <string_view>

namespace isync::store {

// `definition` is the schema's own CREATE INDEX statement (tests hold the two equal).
struct deferred_index {
    std::string_view name;
    std::string_view definition;
};

}  // namespace isync::store
