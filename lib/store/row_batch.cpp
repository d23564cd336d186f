#include "store/row_batch.hpp"

#include <algorithm>
#include <stdexcept>
#include <type_traits>

namespace isync::store {

row_batch::row_batch(statement_registry& statements, std::string insert, int columns)
    : statements_(statements), insert_(std::move(insert)), columns_(static_cast<std::size_t>(columns)) {
    values_.reserve(columns_ * 256);
}

void row_batch::add(std::initializer_list<value> row) {
    if (row.size() != columns_) throw std::logic_error("row_batch: " + insert_ + ": wrong number of values");
    values_.insert(values_.end(), row);
}

SQLite::Statement& row_batch::statement_for(std::size_t rows) {
    auto& slot = by_rows_[rows];
    if (!slot) {
        std::string row = "(?";
        for (std::size_t c = 1; c < columns_; ++c) row += ",?";
        row += ')';
        std::string sql = insert_;
        for (std::size_t r = 0; r < rows; ++r) sql += (r == 0 ? " " : ",") + row;
        slot = &statements_.make(sql);
    }
    return *slot;
}

void row_batch::flush() {
    // Dropped whatever happens: after a failure the transaction rolls back.
    struct drop_rows {
        std::vector<value>& values;
        ~drop_rows() { values.clear(); }
    } drop{values_};
    const std::size_t total_rows = values_.size() / columns_;
    for (std::size_t first = 0; first < total_rows; first += max_rows) {
        const std::size_t rows = std::min(max_rows, total_rows - first);
        SQLite::Statement& st = statement_for(rows);
        int index = 1;
        for (std::size_t i = first * columns_; i < (first + rows) * columns_; ++i, ++index) {
            std::visit(
                [&](const auto& v) {
                    using T = std::decay_t<decltype(v)>;
                    if constexpr (std::is_same_v<T, std::monostate>)
                        st.bind(index);
                    else if constexpr (std::is_same_v<T, const std::string*>)
                        st.bindNoCopy(index, *v);
                    else
                        st.bind(index, v);
                },
                values_[i]);
        }
        run(st);
    }
}

}  // namespace isync::store
