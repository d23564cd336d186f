#pragma once
// The API's rate-limit headers, read so the daemon slows down before a 429
// forces it (api-contract: a sibling HUMAN API answers with
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset). Sans-io.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace isync::api {

// The server's clock when it answered: its `Date` header (IMF-fixdate), or
// `local_now_ms` when there is none or it does not parse. Times the server
// states (a Reset instant, a Retry-After date) are measured against this, so
// a skewed clock on either side does not stretch or cut a wait.
std::int64_t server_now_ms(std::string_view date_header, std::int64_t local_now_ms);

struct rate_budget {
    std::int64_t remaining = 0;                // requests left in the current window
    std::chrono::milliseconds until_reset{0};  // from the response until the window resets
};

// X-RateLimit-Remaining and X-RateLimit-Reset as a budget, or nullopt when
// either is absent or not a non-negative integer. Reset is read as the
// contract documents it, epoch seconds; a value below 10^9 as seconds from
// now (the IETF RateLimit draft's form) and one above 10^12 as epoch
// milliseconds, since servers differ. A reset in the past is 0 ms away.
std::optional<rate_budget> parse_rate_limit(std::string_view remaining, std::string_view reset,
                                            std::int64_t server_now_ms);

}  // namespace isync::api
