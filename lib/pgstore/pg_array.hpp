#pragma once
// PostgreSQL arrays (text literals such as {"a","b",NULL}, or binary text
// arrays), one per column of a batch of rows, for statements that read their rows from
// unnest($1::text[], $2::bigint[], ...): one round trip and one statement per
// table whatever the number of rows.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isync::pgstore {

class pg_array {
public:
    // text_literal: {"a",NULL,...}, for any element type (the server parses
    // each element with the column type's input function).
    // binary_text: PostgreSQL's binary array format with text elements, for
    // a `$n::text[]` parameter sent in binary: the server copies each
    // element instead of scanning it for quotes and escapes, which for the
    // incidents' raw_json was most of the server's time parsing arrays.
    enum class format { text_literal, binary_text };
    explicit pg_array(format f = format::text_literal) : format_(f) {}

    void add(std::string_view text);  // text_literal: quoted; " and \ escaped
    void add(const std::optional<std::string>& text) {
        if (text)
            add(std::string_view(*text));
        else
            add_null();
    }
    void add(std::int64_t value);                  // text_literal only
    void add(const std::optional<double>& value);  // text_literal only
    void add_null();

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    bool binary() const { return format_ == format::binary_text; }
    // The parameter's value: the literal, e.g. {"x",NULL,"y"} ({} when
    // empty), or the binary array.
    std::string value() const;
    void clear() {
        body_.clear();
        size_ = 0;
        has_null_ = false;
    }

private:
    void separator() {
        if (size_++ > 0 && !binary()) body_ += ',';
    }
    void require_literal() const;
    format format_;
    std::string body_;  // text_literal: between the braces; binary_text: the elements
    std::size_t size_ = 0;
    bool has_null_ = false;
};

}  // namespace isync::pgstore
