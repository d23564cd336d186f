#pragma once
// Durations as the config file writes them: an integer and a unit
// (`ms`, `s`, `m`, `h`, `d`), e.g. `500ms`, `30s`, `5m`, `24h`, `7d`.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace isync::util {

// Returns the duration, or nullopt when `text` is not `<digits><unit>`.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Formats with the largest unit that divides evenly: 300000ms -> "5m".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace isync::util
