#include "pgstore/pg_array.hpp"

#include <fmt/format.h>

namespace isync::pgstore {

void pg_array::add(std::string_view text) {
    separator();
    body_.reserve(body_.size() + text.size() + 2);
    body_ += '"';
    for (char c : text) {
        // PostgreSQL text cannot hold NUL (a JSON string may, as \u0000): it
        // is dropped from the column, and raw_json keeps it, escaped.
        if (c == '\0') continue;
        if (c == '"' || c == '\\') body_ += '\\';
        body_ += c;
    }
    body_ += '"';
}

void pg_array::add(std::int64_t value) {
    separator();
    body_ += std::to_string(value);
}

void pg_array::add(const std::optional<double>& value) {
    separator();
    // Shortest text that reads back as the same double.
    body_ += value ? fmt::format("{}", *value) : "NULL";
}

void pg_array::add_null() {
    separator();
    body_ += "NULL";
}

}  // namespace isync::pgstore
