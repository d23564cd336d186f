#pragma once
// Logging to stderr: `text` for people and journald, `json` one object a line.

#include "util/error.hpp"

#include <spdlog/common.h>

#include <string_view>

namespace isync::log {

// Parses trace|debug|info|warn|error; errc::config otherwise.
result<spdlog::level::level_enum> parse_level(std::string_view text);

// Replaces the default logger with a stderr logger in `format` (text|json).
void init(spdlog::level::level_enum level, std::string_view format);

}  // namespace isync::log
