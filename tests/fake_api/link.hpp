#pragma once
// The network between the client and the fake API, as a real link and a real
// front end would shape it: latency before every answer, a cap on requests in
// flight (beyond it: 429 at once), and compressed bodies for clients that
// accept them. Pure decisions; the server only applies them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fake_api {

struct link_options {
    std::chrono::milliseconds latency{0};         // before every admitted answer
    std::chrono::milliseconds latency_jitter{0};  // plus a uniform extra in [0, jitter]
    std::uint32_t max_in_flight = 0;              // 0: unlimited; a request beyond it gets 429 at once
    std::uint32_t retry_after_seconds = 1;        // the Retry-After of those 429s
    bool compression = true;                      // gzip (else deflate) when Accept-Encoding allows it
    // A rate limit per fixed window, stated on every answer as
    // X-RateLimit-Limit/-Remaining/-Reset (Reset in epoch seconds); a request
    // beyond it gets 429 at once, Retry-After the seconds to the reset. 0: none.
    std::uint32_t rate_limit = 0;
    std::chrono::milliseconds rate_window{60'000};
};

// The delay before one answer: latency plus `random` reduced to [0, jitter].
std::chrono::milliseconds link_delay(const link_options& link, std::uint64_t random) noexcept;

enum class content_coding { identity, gzip, deflate };

// The coding for a request whose Accept-Encoding header is `accept_encoding`:
// gzip when acceptable, else deflate when acceptable, else identity. Codings
// are matched case-insensitively, `x-gzip` counts as gzip, `;q=0` refuses a
// coding, and `*` accepts every coding not named. Never fails: anything
// unreadable is ignored.
content_coding choose_coding(std::string_view accept_encoding) noexcept;

// The Content-Encoding value: "gzip" or "deflate"; "" for identity.
std::string_view coding_name(content_coding coding) noexcept;

// `body` in `coding`: gzip (RFC 1952), deflate as the zlib format (RFC 1950,
// what HTTP calls deflate), or unchanged. Throws std::runtime_error when zlib
// fails (out of memory).
std::string encode_body(std::string_view body, content_coding coding);

// Requests being served against a limit (0: none). Not thread-safe.
class in_flight_gate {
public:
    explicit in_flight_gate(std::uint32_t limit = 0) noexcept : limit_(limit) {}

    // Admits one more request; false, changing nothing, when `limit` are in.
    bool try_enter() noexcept;
    void leave() noexcept;  // one admitted request is done
    std::uint32_t current() const noexcept { return current_; }

private:
    std::uint32_t limit_;
    std::uint32_t current_ = 0;
};

// Requests counted in fixed windows against a limit (0: none). Not thread-safe.
class rate_window_counter {
public:
    rate_window_counter(std::uint32_t limit, std::chrono::milliseconds window) noexcept
        : limit_(limit), window_(window) {}

    struct decision {
        bool allowed = true;
        std::uint32_t remaining = 0;  // left in this window after this request
        std::chrono::milliseconds until_reset{0};
    };
    // Counts one request at `now` (an allowed one spends one of the window's).
    decision take(std::chrono::steady_clock::time_point now) noexcept;
    bool enabled() const noexcept { return limit_ != 0; }
    std::uint32_t limit() const noexcept { return limit_; }

private:
    std::uint32_t limit_;
    std::chrono::milliseconds window_;
    std::optional<std::chrono::steady_clock::time_point> window_start_;
    std::uint32_t used_ = 0;
};

}  // namespace fake_api
