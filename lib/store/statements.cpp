#include "store/statements.hpp"

namespace isync::store {

SQLite::Statement& statement_registry::make(const std::string& sql) { return statements_.emplace_back(db_, sql); }

void statement_registry::reset_all() noexcept {
    for (auto& st : statements_) st.tryReset();
}

}  // namespace isync::store
