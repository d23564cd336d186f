#include "pgstore/pg_array.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace isync::pgstore {
namespace {
constexpr std::uint32_t text_oid = 25;  // pg_type.oid of text

void append_int32(std::string& out, std::uint32_t v) {  // network byte order
    const char bytes[] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                          static_cast<char>(v)};
    out.append(bytes, sizeof bytes);
}
}  // namespace

void pg_array::add(std::string_view text) {
    separator();
    if (binary()) {
        // A length, then the bytes. PostgreSQL text cannot hold NUL (a JSON
        // string may, as \u0000): it is dropped, as in the literal.
        const auto nuls = std::count(text.begin(), text.end(), '\0');
        append_int32(body_, static_cast<std::uint32_t>(text.size() - static_cast<std::size_t>(nuls)));
        if (nuls == 0) {
            body_.append(text);
        } else {
            for (char c : text)
                if (c != '\0') body_ += c;
        }
        return;
    }
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

void pg_array::require_literal() const {
    if (binary()) throw std::logic_error("pg_array: a binary text array holds text only");
}

void pg_array::add(std::int64_t value) {
    require_literal();
    separator();
    body_ += std::to_string(value);
}

void pg_array::add(const std::optional<double>& value) {
    require_literal();
    separator();
    // Shortest text that reads back as the same double.
    body_ += value ? fmt::format("{}", *value) : "NULL";
}

void pg_array::add_null() {
    separator();
    has_null_ = true;
    if (binary())
        append_int32(body_, 0xFFFFFFFFu);  // length -1: NULL
    else
        body_ += "NULL";
}

std::string pg_array::value() const {
    if (!binary()) return "{" + body_ + "}";
    // array_recv's layout: dimensions, a has-nulls flag, the element type,
    // then each dimension's length and lower bound; an empty array has none.
    std::string out;
    out.reserve(20 + body_.size());
    append_int32(out, size_ == 0 ? 0 : 1);
    append_int32(out, has_null_ ? 1 : 0);
    append_int32(out, text_oid);
    if (size_ > 0) {
        append_int32(out, static_cast<std::uint32_t>(size_));
        append_int32(out, 1);
    }
    out += body_;
    return out;
}

}  // namespace isync::pgstore
