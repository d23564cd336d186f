#include "api/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace isync::api {

backoff::backoff(config::retry_config policy, std::function<double()> uniform01)
    : policy_(policy), uniform01_(std::move(uniform01)) {}

std::chrono::milliseconds backoff::cap(int retry) const {
    const auto base = policy_.base_delay.count();
    const auto max = policy_.max_delay.count();
    // Shifting past 62 bits overflows; by then the cap is max_delay anyway.
    const int shift = std::clamp(retry - 1, 0, 62);
    if (base > 0 && base > (max >> std::min(shift, 62))) return policy_.max_delay;
    return std::chrono::milliseconds(std::min<std::int64_t>(max, base << shift));
}

std::chrono::milliseconds backoff::delay(int retry) const {
    const double u = std::clamp(uniform01_(), 0.0, 1.0);
    return std::chrono::milliseconds(
        static_cast<std::int64_t>(std::floor(u * static_cast<double>(cap(retry).count()))));
}

}  // namespace isync::api
