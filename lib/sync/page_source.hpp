#pragma once
// The engine's one I/O seam: GET a request target, get a response. The real
// source (http_page_source) sends it over a small pool of keep-alive HTTPS
// connections shared by every pair, never more at once than the adaptive
// limit, and pauses everyone when the API says 429 with Retry-After. Tests
// give the engine a scripted source instead (tests/support/scripted_source),
// so retries, giving up, cancellation and the concurrent walk are reached
// without a socket.

#include "http/connection.hpp"
#include "util/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace isync::sync {

// What a source did (an http_page_source counts all of it; a scripted one may not).
struct source_stats {
    int limit = 0;  // requests allowed in flight now
    int in_flight = 0;
    int peak_in_flight = 0;
    std::uint64_t limit_decreases = 0;
    std::uint64_t pauses = 0;        // 429s with Retry-After that paused every request
    std::uint64_t budget_waits = 0;  // waits for the reset of a spent X-RateLimit budget
    std::uint64_t connects = 0;
    std::uint64_t wire_body_bytes = 0;         // as received (compressed or not)
    std::uint64_t decoded_body_bytes = 0;      // after decoding
    std::chrono::milliseconds average_rtt{0};  // moving average of round trips (0 before the first)
};

class page_source {
public:
    virtual ~page_source() = default;
    // The response to GET `target`, or errc::timeout / transport / tls_refused
    // / no_such_host / too_large / cancelled. Never mentions the token.
    virtual boost::asio::awaitable<result<http::response>> get(std::string target) = 0;
    virtual source_stats stats() const { return {}; }
    // Nothing more will be asked (a stop, the end of a single pass): places
    // still held for requests given up are freed now, not when the server
    // would have answered them.
    virtual void forget_given_up_requests() {}
};

}  // namespace isync::sync
