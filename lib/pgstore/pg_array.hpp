#pragma once
// PostgreSQL array literals in text form ({"a","b",NULL}), one per column of
// a batch of rows, for statements that read their rows from
// unnest($1::text[], $2::bigint[], ...): one round trip and one statement per
// table whatever the number of rows.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isync::pgstore {

class pg_array {
public:
    void add(std::string_view text);  // quoted; " and \ escaped
    void add(const std::optional<std::string>& text) {
        if (text)
            add(std::string_view(*text));
        else
            add_null();
    }
    void add(std::int64_t value);
    void add(const std::optional<double>& value);
    void add_null();

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    // The literal, e.g. {"x",NULL,"y"}; {} when empty.
    std::string literal() const { return "{" + body_ + "}"; }
    void clear() {
        body_.clear();
        size_ = 0;
    }

private:
    void separator() {
        if (size_++ > 0) body_ += ',';
    }
    std::string body_;
    std::size_t size_ = 0;
};

}  // namespace isync::pgstore
