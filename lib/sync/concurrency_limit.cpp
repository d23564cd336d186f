#include "sync/concurrency_limit.hpp"

#include <algorithm>
#include <cmath>

namespace isync::sync {

concurrency_controller::concurrency_controller(concurrency_settings s)
    : settings_(s), limit_(std::clamp(s.initial, std::max(1, s.min), std::max(1, s.max))) {}

std::chrono::milliseconds concurrency_controller::average_rtt() const {
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(average_ms_)));
}

bool concurrency_controller::on_probation(time_point now, std::chrono::milliseconds window) const {
    return !slow_start_ && last_increase_ != time_point{} && last_change_ == last_increase_ &&
           responses_at_limit_ < confirm_rounds * limit_ && now - last_increase_ < confirm_rounds * window;
}

void concurrency_controller::decrease(time_point now, std::chrono::milliseconds window, response_signal signal) {
    const int floor_limit = std::max(1, settings_.min);
    if (on_probation(now, window)) {
        // The request the increase let out was one too many: undo it, and
        // wait longer before the next try at the same limit.
        ceiling_ = limit_;
        limit_ = std::max(floor_limit, before_increase_);
        probe_rounds_ = std::min(probe_rounds_ * 2, max_probe_rounds);
    } else if (signal == response_signal::backpressure && responses_at_limit_ >= held_rounds * limit_) {
        // A refusal at a limit that held (in slow start too, when it stopped
        // at api.max_in_flight): the edge of a hard cap, touched by timing.
        // One less, and one above it is a probe again.
        ceiling_ = limit_;
        limit_ = std::max(floor_limit, limit_ - 1);
    } else if (slow_start_) {
        // Doubling overshot: the limit before it worked; one above is a probe.
        limit_ = std::max(floor_limit, static_cast<int>(std::floor(limit_ * settings_.decrease)));
        ceiling_ = limit_ + 1;
    } else {
        ceiling_ = limit_;
        limit_ = std::max(floor_limit, static_cast<int>(std::floor(limit_ * settings_.decrease)));
    }
    last_decrease_ = now;
    slow_start_ = false;
    last_change_ = now;
    responses_at_limit_ = 0;
    ++decreases_;
}

void concurrency_controller::on_response(response_signal signal, std::chrono::milliseconds rtt, int in_flight_at_send,
                                         time_point now) {
    const double ms = static_cast<double>(rtt.count());
    // Decreases at most once per round trip: one burst of refusals is one signal.
    const auto window = std::chrono::milliseconds(std::max<std::int64_t>(1, std::llround(std::max(average_ms_, ms))));
    const bool may_decrease = last_decrease_ == time_point{} || now - last_decrease_ >= window;

    if (signal != response_signal::ok) {
        if (may_decrease) decrease(now, window, signal);
        return;
    }
    const bool spike = average_ms_ > 0 && ms > settings_.spike * average_ms_ &&
                       ms - average_ms_ > static_cast<double>(settings_.spike_margin.count());
    // The average follows ordinary round trips only, so a spike cannot raise
    // the bar it is judged by.
    if (!spike) average_ms_ = average_ms_ == 0 ? ms : 0.8 * average_ms_ + 0.2 * ms;
    if (spike) {
        if (may_decrease) decrease(now, window, response_signal::timeout);
        return;
    }
    // Only answers to requests sent with the limit in use count: an idle
    // limit proves nothing, and answers to requests sent under an older,
    // lower limit say nothing about this one. Counting answers, not time,
    // also leaves out the time spent paused for a Retry-After.
    if (in_flight_at_send < limit_) return;
    ++responses_at_limit_;
    const int rounds = responses_at_limit_ / limit_;
    if (ceiling_ > 0 && limit_ >= ceiling_) {
        if (rounds < confirm_rounds) return;  // a probe on probation: no growth yet
        ceiling_ = 0;                         // it passed: growth by one resumes
        probe_rounds_ = first_probe_rounds;
    }
    if (rounds < 1 || limit_ >= settings_.max) return;
    if (ceiling_ > 0 && limit_ + 1 >= ceiling_ &&
        (rounds < probe_rounds_ || now - last_change_ < probe_rounds_ * pause_cost_))
        return;
    before_increase_ = limit_;
    limit_ = std::min(settings_.max, slow_start_ ? limit_ * 2 : limit_ + 1);
    last_change_ = now;
    responses_at_limit_ = 0;
    if (!slow_start_) last_increase_ = now;
}

}  // namespace isync::sync
