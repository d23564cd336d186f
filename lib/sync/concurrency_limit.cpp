#include "sync/concurrency_limit.hpp"

#include <algorithm>
#include <cmath>

namespace isync::sync {

concurrency_controller::concurrency_controller(concurrency_settings s)
    : settings_(s), limit_(std::clamp(s.initial, std::max(1, s.min), std::max(1, s.max))) {}

std::chrono::milliseconds concurrency_controller::average_rtt() const {
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(average_ms_)));
}

void concurrency_controller::decrease(time_point now) {
    ceiling_ = limit_;
    last_decrease_ = now;
    limit_ = std::max(std::max(1, settings_.min), static_cast<int>(std::floor(limit_ * settings_.decrease)));
    slow_start_ = false;
    last_change_ = now;
    ++decreases_;
}

void concurrency_controller::on_response(response_signal signal, std::chrono::milliseconds rtt, int in_flight_at_send,
                                         time_point now) {
    const double ms = static_cast<double>(rtt.count());
    // One change per round trip: the responses to requests sent at the old
    // limit say nothing new about the new one.
    const auto window = std::chrono::milliseconds(std::max<std::int64_t>(1, std::llround(std::max(average_ms_, ms))));
    const bool may_change = last_change_ == time_point{} || now - last_change_ >= window;
    const bool may_decrease = last_decrease_ == time_point{} || now - last_decrease_ >= window;

    if (signal != response_signal::ok) {
        if (may_decrease) decrease(now);
        return;
    }
    const bool spike = average_ms_ > 0 && ms > settings_.spike * average_ms_;
    // The average follows ordinary round trips only, so a spike cannot raise
    // the bar it is judged by.
    if (!spike) average_ms_ = average_ms_ == 0 ? ms : 0.8 * average_ms_ + 0.2 * ms;
    if (spike) {
        if (may_decrease) decrease(now);
        return;
    }
    // Grow only when the limit was actually in use: an idle limit proves nothing.
    if (in_flight_at_send < limit_ || !may_change || limit_ >= settings_.max) return;
    if (ceiling_ > 0 && limit_ + 1 >= ceiling_ && now - last_change_ < 10 * window) return;
    limit_ = std::min(settings_.max, slow_start_ ? limit_ * 2 : limit_ + 1);
    last_change_ = now;
}

}  // namespace isync::sync
