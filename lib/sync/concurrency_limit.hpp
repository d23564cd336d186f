#pragma once
// How many requests may be in flight to the API: learned, not guessed.
// Sans-io: the caller reports each response with its round-trip time and the
// time now; the controller answers with the limit. Modelled on Vector's
// adaptive request concurrency (RFC 1858) and Netflix's concurrency-limits:
//
//  - additive increase: +1 when a response came back while the limit was in
//    use (in flight reached it) with no back-pressure and a round trip near
//    its moving average, at most once per round trip;
//  - multiplicative decrease: x0.5 on 429, 503, a timeout or a round trip far
//    above its average (a spike), at most once per round trip, so one burst
//    of refusals halves the limit once rather than to the floor; a refusal
//    right after an increase (the probe was one too many) always counts;
//  - slow start: until the first decrease the limit doubles per round trip
//    instead of growing by one (the ramp-up users of both tools complain of);
//  - recovery: after a decrease, additive increase resumes at once: no
//    cool-down beyond one round trip; but at the limit where back-pressure
//    last came, it probes only every tenth round trip (a gateway with a hard
//    cap would otherwise refuse a request every few round trips, and each 429
//    pauses every request for its Retry-After).

#include <chrono>
#include <cstdint>

namespace isync::sync {

struct concurrency_settings {
    int initial = 4;
    int min = 1;
    int max = 32;            // api.max_in_flight
    double decrease = 0.5;   // factor on back-pressure
    double spike = 3.0;      // a round trip above spike x average is back-pressure
};

enum class response_signal {
    ok,            // an answer (any status but 429/503)
    backpressure,  // 429 or 503
    timeout,       // no answer within api.timeout, or the connection dropped
};

class concurrency_controller {
public:
    using time_point = std::chrono::steady_clock::time_point;

    explicit concurrency_controller(concurrency_settings s);

    int limit() const { return limit_; }
    // The moving average of round trips (0 before the first).
    std::chrono::milliseconds average_rtt() const;
    std::uint64_t decreases() const { return decreases_; }

    // One response: what it said, how long it took, how many requests were in
    // flight when it was sent (itself included), and the time now.
    void on_response(response_signal signal, std::chrono::milliseconds rtt, int in_flight_at_send, time_point now);

private:
    void decrease(time_point now);

    concurrency_settings settings_;
    int limit_;
    double average_ms_ = 0;   // exponentially weighted moving average
    bool slow_start_ = true;
    time_point last_change_{};    // of the limit, either way: increases wait a round trip after it
    time_point last_decrease_{};  // decreases wait a round trip after the last decrease only
    int ceiling_ = 0;  // the limit at which back-pressure last came (0: none yet)
    std::uint64_t decreases_ = 0;
};

}  // namespace isync::sync
