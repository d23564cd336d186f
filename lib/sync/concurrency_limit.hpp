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
//    of refusals halves the limit once rather than to the floor;
//  - a refused probe is undone, not halved: back-pressure within a round
//    trip of an additive increase says the new request was one too many, so
//    the limit returns to where it was (halving a hard cap of 8 to 4 would
//    idle half the link until it grew back);
//  - slow start: until the first decrease the limit doubles per round trip
//    instead of growing by one (the ramp-up users of both tools complain of);
//    when the doubling overshoots, the limit halves to the last one that
//    worked, which is most likely the gateway's cap: going one above it is
//    then a probe like any other;
//  - a 429 at a limit that held (answered ten rounds at it without a
//    complaint) steps down by one, not by half: against a gateway's hard
//    cap, a request sent the moment another's answer arrives can reach it
//    before it counted that answer done, so a long-held limit equal to the
//    cap earns a rare 429 that says "at the edge", not "congested". A second
//    refusal before ten more rounds halves as usual;
//  - probes, rare and rarer: one above the limit where back-pressure last
//    came is tried only after 10 round trips there, and after each refused
//    probe the wait doubles (up to 160): each 429 pauses every request for its
//    Retry-After, so a gateway with a hard cap must not cost one every second.
//    Where the API pauses everyone on a refusal (429 Retry-After, see
//    on_pause), a probe also waits that many times the pause in time: a
//    refused probe then costs at most a tenth of the time spent at the limit.
//    A probe that passes clears the mark: additive increase resumes.

#include <chrono>
#include <cstdint>

namespace isync::sync {

struct concurrency_settings {
    int initial = 4;
    int min = 1;
    int max = 32;           // api.max_in_flight
    double decrease = 0.5;  // factor on back-pressure
    double spike = 3.0;     // a round trip above spike x average is back-pressure,
    // when it is also this much above the average: on a near API (loopback,
    // a LAN) round trips of 0-4 ms vary by scheduling alone, and read as
    // spikes they held a 1M backfill's limit at 1-2 requests in flight.
    std::chrono::milliseconds spike_margin{25};
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

    // A refusal made every request wait `pause` (a 429's Retry-After): the
    // price of a refused probe, so probes wait probe rounds x pause too.
    void on_pause(std::chrono::milliseconds pause) { pause_cost_ = pause; }

private:
    // Back-pressure within `confirm_rounds` (rounds at the limit, or round
    // trips of time) of an additive increase is taken as the increase's fault.
    bool on_probation(time_point now, std::chrono::milliseconds window) const;
    void decrease(time_point now, std::chrono::milliseconds window, response_signal signal);
    static constexpr int first_probe_rounds = 10;
    static constexpr int max_probe_rounds = 160;
    static constexpr int confirm_rounds = 3;
    static constexpr int held_rounds = 10;  // a limit answered this many rounds at has held

    concurrency_settings settings_;
    int limit_;
    double average_ms_ = 0;  // exponentially weighted moving average
    bool slow_start_ = true;
    time_point last_change_{};    // of the limit, either way
    time_point last_decrease_{};  // decreases wait a round trip after the last decrease only
    int ceiling_ = 0;             // the limit at which back-pressure last came (0: none, or a probe passed it)
    int probe_rounds_ = first_probe_rounds;    // rounds at the limit below ceiling_ before probing it
    int responses_at_limit_ = 0;               // answers sent with the limit in use, since it last changed
    std::chrono::milliseconds pause_cost_{0};  // the last pause a refusal caused (on_pause)
    int before_increase_ = 0;                  // the limit before the last additive increase
    time_point last_increase_{};               // of that increase
    std::uint64_t decreases_ = 0;
};

}  // namespace isync::sync
