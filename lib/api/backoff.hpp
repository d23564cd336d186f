#pragma once
// Retry timing: exponential backoff with full jitter. Sans-io: the random
// source is injected so tests can check every delay's bounds.

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <functional>

namespace isync::api {

class backoff {
public:
    // `uniform01` returns a value in [0, 1).
    backoff(config::retry_config policy, std::function<double()> uniform01);

    // The cap for retry number `retry` (1 = the first retry): min(max_delay,
    // base_delay * 2^(retry-1)).
    std::chrono::milliseconds cap(int retry) const;

    // A delay drawn uniformly from [0, cap(retry)] ("full jitter").
    std::chrono::milliseconds delay(int retry) const;

    // True when `attempts` requests have been made and no more are allowed.
    bool exhausted(int attempts) const { return attempts >= policy_.max_attempts; }

    const config::retry_config& policy() const { return policy_; }

private:
    config::retry_config policy_;
    std::function<double()> uniform01_;
};

}  // namespace isync::api
