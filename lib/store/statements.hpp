#pragma once
// The store's prepared statements, each made once and reused, all through one
// registry: after a failure, reset_all() readies every statement the store
// ever made, so a statement added later cannot be left out of the reset.
// Without a reset, a statement that threw between its step and its reset, or a
// SELECT left before its last row, stays mid-query: SQLite refuses to bind it,
// SQLiteCpp refuses to step one again that ran to its end, and a half-read
// SELECT holds its read (and so the WAL) open. A statement made for one call
// and destroyed at its end needs none of this.
//
// Also the two helpers every write uses: run() and bind_optional().

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstddef>
#include <deque>
#include <optional>
#include <string>

namespace isync::store {

class statement_registry {
public:
    // `db` must outlive the registry.
    explicit statement_registry(SQLite::Database& db) : db_(db) {}
    statement_registry(const statement_registry&) = delete;
    statement_registry& operator=(const statement_registry&) = delete;

    // Prepares `sql` and keeps the statement for the registry's life (the
    // reference stays valid). Throws SQLite::Exception when `sql` does not
    // prepare (a table or column the schema lacks).
    SQLite::Statement& make(const std::string& sql);

    // Resets every statement ever made through make(): each can be bound and
    // stepped again from its first row. Bindings stay (sqlite3_reset keeps
    // them); every use binds all of its values anew.
    void reset_all() noexcept;

    // How many statements make() has made.
    std::size_t size() const { return statements_.size(); }

private:
    SQLite::Database& db_;
    std::deque<SQLite::Statement> statements_;  // a deque: adding one moves none of the others
};

// Runs a write statement once and readies it for the next use.
inline void run(SQLite::Statement& st) {
    st.exec();
    st.reset();
}

// Binds a value or NULL. Text is bound without a copy (SQLITE_STATIC): every
// value bound with it must live until the statement has run (see run()).
inline void bind_optional(SQLite::Statement& st, int index, const std::optional<std::string>& v) {
    if (v)
        st.bindNoCopy(index, *v);
    else
        st.bind(index);
}

inline void bind_optional(SQLite::Statement& st, int index, const std::optional<bool>& v) {
    if (v)
        st.bind(index, *v ? 1 : 0);
    else
        st.bind(index);
}

inline void bind_optional(SQLite::Statement& st, int index, const std::optional<double>& v) {
    if (v)
        st.bind(index, *v);
    else
        st.bind(index);
}

}  // namespace isync::store
