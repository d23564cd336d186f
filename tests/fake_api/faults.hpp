#pragma once
// The failures the fake API can inject, and which one hits a given request.
// "Every Kth" counts requests since the faults were last set, starting at 1,
// so a test that sets faults knows exactly which of its requests fail.

#include <chrono>
#include <cstdint>

namespace fake_api {

struct faults {
    std::uint32_t fail_every_kth = 0;        // 500 on requests K, 2K, ...
    std::uint32_t fail_burst = 0;            // the next N requests answer 500
    std::uint32_t rate_limit_every_kth = 0;  // 429 with Retry-After
    std::uint32_t retry_after_seconds = 1;
    bool retry_after_http_date = false;              // Retry-After as an IMF-fixdate instead of seconds
    std::uint32_t truncate_every_kth = 0;            // full Content-Length, half the body, then close
    std::uint32_t malformed_every_kth = 0;           // 200 whose body is broken JSON
    std::uint32_t reset_every_kth = 0;               // close (TCP RST) without answering
    std::uint32_t wrong_content_type_every_kth = 0;  // 200 text/html page, as from a captive proxy
    std::chrono::milliseconds delay{0};              // wait this long before every answer
    bool never_answer = false;                       // read requests, answer none
    std::uint32_t live_changes_per_request = 0;      // live mode: M changed + M new incidents per request
    unsigned account_settings_status = 0;            // GET /v1/account-settings answers this status (0: normally)
};

enum class fault_action { none, fail, rate_limit, truncate, malformed, reset, never_answer, wrong_content_type };

// The fault for request number `seq` (1-based). When several apply, the most
// disruptive wins: never_answer, reset, burst/fail, rate_limit, truncate,
// malformed, wrong_content_type. Consumes one request of `fail_burst`.
fault_action next_fault(faults& active, std::uint64_t seq);

// Whether the fault replaces the response (the rest only alter a 200).
constexpr bool replaces_response(fault_action a) {
    return a == fault_action::fail || a == fault_action::rate_limit || a == fault_action::reset ||
           a == fault_action::never_answer;
}

}  // namespace fake_api
