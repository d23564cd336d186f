#pragma once
// Logging to stderr: `text` for people and journald, `json` one object a line.

#include "util/error.hpp"

#include <spdlog/common.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace isync::log {

// Parses trace|debug|info|warn|error; errc::config otherwise.
result<spdlog::level::level_enum> parse_level(std::string_view text);

// Replaces the default logger with a stderr logger in `format` (text|json).
void init(spdlog::level::level_enum level, std::string_view format);

// Fields for the log lines written while this object lives (on this thread):
// with `log.format: json` each becomes a key of the line's object beside
// "msg" (numbers as numbers); the text format shows only the message, which
// already says the same in words. Keys in use: pair, slice_from, slice_to,
// new, changed, unchanged, read, status, error, skip, attempt.
class scoped_fields {
public:
    struct field {
        std::string key;
        std::string value;
        bool number = false;
    };
    explicit scoped_fields(std::vector<field> fields);
    ~scoped_fields();
    scoped_fields(const scoped_fields&) = delete;
    scoped_fields& operator=(const scoped_fields&) = delete;

    static field text(std::string key, std::string value) { return {std::move(key), std::move(value), false}; }
    static field number(std::string key, std::int64_t value) { return {std::move(key), std::to_string(value), true}; }

private:
    std::size_t previous_size_;
};

}  // namespace isync::log
