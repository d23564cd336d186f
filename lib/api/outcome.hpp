#pragma once
// What to do with an HTTP response: the retry policy's input. Sans-io.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isync::api {

enum class outcome_kind {
    success,       // 200: parse the page
    auth,          // 401/403: the token was refused; no retry until the next interval
    bad_request,   // 4xx (422 and others), 3xx: retrying cannot help; keep the watermark
    rate_limited,  // 429: wait for Retry-After, then retry
    transient,     // 5xx, transport errors, timeouts, broken bodies: retry with backoff
};

struct outcome {
    outcome_kind kind;
    std::string message;                                   // for the log and sync_runs.error; never contains the token
    std::optional<std::chrono::milliseconds> retry_after;  // 429 only, clamped
};

// Classifies a response status. `body` is the server's text (quoted,
// truncated to 200 bytes, for 4xx); `retry_after` the header value, if any;
// `now_ms` the wall clock for the HTTP-date form; `max_delay` the clamp.
outcome classify_response(unsigned status, std::string_view body, std::string_view retry_after, std::int64_t now_ms,
                          std::chrono::milliseconds max_delay);

// `Retry-After` in either form (delta-seconds or IMF-fixdate), as a delay from
// `now_ms`, never negative; nullopt when the value is malformed.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, std::int64_t now_ms);

// What a refusal's body says, for people: the `message` (or `error`,
// `detail`) string of a JSON object, else the body quoted; truncated either way.
std::string server_message(std::string_view body);

}  // namespace isync::api
