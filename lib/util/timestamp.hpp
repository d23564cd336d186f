#pragma once
// ISO-8601 timestamps as the API sends them (`...Z`, `....084Z`, `...+02:00`)
// and as we store them: UTC `YYYY-MM-DDTHH:MM:SS.sssZ`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isync::util {

// Epoch milliseconds, or nullopt when `text` is not an ISO-8601 date-time with
// a `Z` or `+HH:MM`/`-HH:MM` offset. Fractions beyond milliseconds are truncated.
std::optional<std::int64_t> parse_iso8601_ms(std::string_view text);

// `YYYY-MM-DDTHH:MM:SS.sssZ` for epoch milliseconds (any value in years 0000-9999).
std::string format_iso8601_ms(std::int64_t epoch_ms);

// Parses and re-formats in UTC; nullopt when the input is not a timestamp.
std::optional<std::string> normalize_iso8601(std::string_view text);

// RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to epoch ms, as used by
// `Retry-After` and `Date`; nullopt when malformed.
std::optional<std::int64_t> parse_http_date_ms(std::string_view text);

// Formats epoch ms as an IMF-fixdate.
std::string format_http_date(std::int64_t epoch_ms);

// A time as the commands take it (`export --since`, `resync --from/--to`):
// ISO 8601 (`2026-12-01T00:00:00Z`) or a duration back from `now_ms`
// (`24h`, `7d`). nullopt when it is neither.
std::optional<std::int64_t> parse_time_or_ago(std::string_view text, std::int64_t now_ms);

}  // namespace isync::util
