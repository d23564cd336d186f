#pragma once
// Rows of one table collected during a page and inserted with multi-row
// INSERT statements (`VALUES (...), (...), ...`), so that SQLite runs one
// statement per chunk of rows instead of one per row.
//
// Values are bound without copies: every string added must stay alive until
// flush() (the page being written owns them).

#include "store/statements.hpp"

#include <SQLiteCpp/Statement.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace isync::store {

class row_batch {
public:
    using value = std::variant<std::monostate, std::int64_t, double, const std::string*>;

    // `insert` is the statement up to and including VALUES, e.g.
    // "INSERT INTO actions (incident_key, ordinal, type) VALUES"; `columns` the
    // number of values per row. Its statements are made through `statements`
    // (which resets them after a failure) as they are first needed.
    row_batch(statement_registry& statements, std::string insert, int columns);

    // Adds one row of exactly `columns` values.
    void add(std::initializer_list<value> row);
    static value text(const std::optional<std::string>& v) { return v ? value(&*v) : value(); }
    static value real(const std::optional<double>& v) { return v ? value(*v) : value(); }

    // Inserts every row added, in order (throws like any statement; the rows
    // are dropped either way).
    void flush();
    // Drops the rows added (after a rollback).
    void clear() noexcept { values_.clear(); }
    bool empty() const { return values_.empty(); }

private:
    // Rows per statement: 16 rows of 5 columns stay far below SQLite's
    // 32,766 bound parameters, and a page's rows need at most 16 statements
    // of different sizes, each prepared once.
    static constexpr std::size_t max_rows = 16;

    SQLite::Statement& statement_for(std::size_t rows);

    statement_registry& statements_;
    std::string insert_;
    std::size_t columns_;
    std::vector<value> values_;
    std::array<SQLite::Statement*, max_rows + 1> by_rows_{};  // made through statements_ on first use
};

}  // namespace isync::store
